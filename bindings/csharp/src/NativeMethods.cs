// The raw P/Invoke layer: one declaration per CARDBRIDGE_API export of include/cardbridge.h
// (ffi-conventions.md §9.2-§9.5). Hand-written; the test suite compares the set of entry
// points with the header so nothing is silently missing.
//
// Mapping rules: cardbridge_result and uint32_t -> uint; size_t -> UIntPtr; int64_t -> long;
// uint16_t -> ushort; C bool -> bool marshalled as one byte; UTF-8 text in -> byte* + length;
// handles -> SafeHandle subclasses (IntPtr only in the _free functions, which SafeHandles call);
// cardbridge_error ** -> out IntPtr, read and freed by CardbridgeException.FromOwnedError.
using System;
using System.Runtime.InteropServices;

namespace CardBridge
{
    /// <summary>cardbridge_bytes: a buffer owned by the native library.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct NativeBytes
    {
        public byte* Data;
        public UIntPtr Len;

        /// <summary>Copies the bytes out, then releases the native buffer.</summary>
        public byte[] TakeBytes()
        {
            try
            {
                var copy = new byte[checked((int)Len.ToUInt64())];
                if (copy.Length > 0)
                {
                    Marshal.Copy((IntPtr)Data, copy, 0, copy.Length);
                }
                return copy;
            }
            finally
            {
                Dispose();
            }
        }

        /// <summary>Decodes the bytes as UTF-8, then releases the native buffer.</summary>
        public string TakeString()
        {
            try
            {
                return Utf8.Decode(Data, Len);
            }
            finally
            {
                Dispose();
            }
        }

        /// <summary>cardbridge_bytes_free: frees the data and zeroes the struct (idempotent).</summary>
        public void Dispose()
        {
            NativeMethods.cardbridge_bytes_free(ref this);
        }
    }

    /// <summary>cardbridge_header: borrowed views of one header's name and value.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct NativeHeader
    {
        public byte* Name;
        public UIntPtr NameLen;
        public byte* Value;
        public UIntPtr ValueLen;
    }

    internal static unsafe class NativeMethods
    {
        private const string Lib = "cardbridge";

        // ---- Alipay+ integration ------------------------------------------------------------

        [DllImport(Lib, EntryPoint = "cardbridge_alipayplus_new", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_alipayplus_new(byte* config_json, UIntPtr config_json_len, SafeStoreHandle store, out SafeAlipayPlusHandle alipayplus_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_alipayplus_free", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern void cardbridge_alipayplus_free(IntPtr alipayplus);

        [DllImport(Lib, EntryPoint = "cardbridge_alipayplus_issue_card", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_alipayplus_issue_card(SafeAlipayPlusHandle alipayplus, byte* request_json, UIntPtr request_json_len, out NativeBytes response_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_alipayplus_build_issue_card", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_alipayplus_build_issue_card(byte* registration_json, UIntPtr registration_json_len, byte* external_customer_id, UIntPtr external_customer_id_len, byte* register_date, UIntPtr register_date_len, byte* card_fields_json, UIntPtr card_fields_json_len, byte* options_json, UIntPtr options_json_len, out NativeBytes request_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_alipayplus_resume_pending", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_alipayplus_resume_pending(SafeAlipayPlusHandle alipayplus, out NativeBytes report_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_alipayplus_begin", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_alipayplus_begin(SafeAlipayPlusHandle alipayplus, byte* method, UIntPtr method_len, byte* target, UIntPtr target_len, NativeHeader* headers, UIntPtr headers_len, byte* body, UIntPtr body_len, long now_unix_ms, out SafeHttpResponseHandle response_out, out SafeAlipayPlusCallHandle call_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_alipayplus_call_api", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_alipayplus_call_api(SafeAlipayPlusCallHandle call);

        [DllImport(Lib, EntryPoint = "cardbridge_alipayplus_call_earlier_claims", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_alipayplus_call_earlier_claims(SafeAlipayPlusCallHandle call);

        [DllImport(Lib, EntryPoint = "cardbridge_alipayplus_call_request", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_alipayplus_call_request(SafeAlipayPlusCallHandle call, out byte* json_out, out UIntPtr json_len_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_alipayplus_finish", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_alipayplus_finish(SafeAlipayPlusHandle alipayplus, SafeAlipayPlusCallHandle call, byte* decision_json, UIntPtr decision_json_len, long now_unix_ms, out SafeHttpResponseHandle response_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_alipayplus_finish_unknown", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_alipayplus_finish_unknown(SafeAlipayPlusHandle alipayplus, SafeAlipayPlusCallHandle call, long now_unix_ms, out SafeHttpResponseHandle response_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_alipayplus_call_free", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern void cardbridge_alipayplus_call_free(IntPtr call);

        [DllImport(Lib, EntryPoint = "cardbridge_alipayplus_purge_expired", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_alipayplus_purge_expired(SafeAlipayPlusHandle alipayplus, long now_unix_ms, out UIntPtr purged_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_alipayplus_validate", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_alipayplus_validate(byte* message, UIntPtr message_len, byte* json, UIntPtr json_len, uint direction, out NativeBytes normalized_out, out IntPtr error_out);

        // ---- WeChat Pay integration -----------------------------------------------------------

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_new", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_new(byte* config_json, UIntPtr config_json_len, SafeStoreHandle store, out SafeWechatPayHandle wechatpay_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_free", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern void cardbridge_wechatpay_free(IntPtr wechatpay);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_confirm", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_confirm(SafeWechatPayHandle wechatpay, byte* input_json, UIntPtr input_json_len, out NativeBytes answer_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_get_user_card", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_get_user_card(SafeWechatPayHandle wechatpay, byte* input_json, UIntPtr input_json_len, out NativeBytes answer_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_update_user_card", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_update_user_card(SafeWechatPayHandle wechatpay, byte* input_json, UIntPtr input_json_len, out NativeBytes answer_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_sync_user_points", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_sync_user_points(SafeWechatPayHandle wechatpay, byte* input_json, UIntPtr input_json_len, out NativeBytes answer_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_create_card_template", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_create_card_template(SafeWechatPayHandle wechatpay, byte* input_json, UIntPtr input_json_len, out NativeBytes answer_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_list_card_templates", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_list_card_templates(SafeWechatPayHandle wechatpay, byte* input_json, UIntPtr input_json_len, out NativeBytes answer_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_get_card_template", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_get_card_template(SafeWechatPayHandle wechatpay, byte* input_json, UIntPtr input_json_len, out NativeBytes answer_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_update_card_template", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_update_card_template(SafeWechatPayHandle wechatpay, byte* input_json, UIntPtr input_json_len, out NativeBytes answer_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_remove_card_template", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_remove_card_template(SafeWechatPayHandle wechatpay, byte* input_json, UIntPtr input_json_len, out NativeBytes answer_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_list_user_cards", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_list_user_cards(SafeWechatPayHandle wechatpay, byte* input_json, UIntPtr input_json_len, out NativeBytes answer_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_invalidate_user_card", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_invalidate_user_card(SafeWechatPayHandle wechatpay, byte* input_json, UIntPtr input_json_len, out NativeBytes answer_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_import_user_card", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_import_user_card(SafeWechatPayHandle wechatpay, byte* input_json, UIntPtr input_json_len, out NativeBytes answer_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_import_user_card_by_phone", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_import_user_card_by_phone(SafeWechatPayHandle wechatpay, byte* input_json, UIntPtr input_json_len, out NativeBytes answer_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_create_user_feed", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_create_user_feed(SafeWechatPayHandle wechatpay, byte* input_json, UIntPtr input_json_len, out NativeBytes answer_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_confirm_exchange_coupon", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_confirm_exchange_coupon(SafeWechatPayHandle wechatpay, byte* input_json, UIntPtr input_json_len, out NativeBytes answer_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_create_membership_activity", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_create_membership_activity(SafeWechatPayHandle wechatpay, byte* input_json, UIntPtr input_json_len, out NativeBytes answer_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_list_membership_activities", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_list_membership_activities(SafeWechatPayHandle wechatpay, byte* input_json, UIntPtr input_json_len, out NativeBytes answer_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_get_membership_activity", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_get_membership_activity(SafeWechatPayHandle wechatpay, byte* input_json, UIntPtr input_json_len, out NativeBytes answer_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_update_membership_activity", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_update_membership_activity(SafeWechatPayHandle wechatpay, byte* input_json, UIntPtr input_json_len, out NativeBytes answer_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_terminate_membership_activity", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_terminate_membership_activity(SafeWechatPayHandle wechatpay, byte* input_json, UIntPtr input_json_len, out NativeBytes answer_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_create_pre_auth_token", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_create_pre_auth_token(SafeWechatPayHandle wechatpay, byte* input_json, UIntPtr input_json_len, out NativeBytes answer_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_create_pay_view_token", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_create_pay_view_token(SafeWechatPayHandle wechatpay, byte* input_json, UIntPtr input_json_len, out NativeBytes answer_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_validate", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_validate(byte* operation, UIntPtr operation_len, byte* input_json, UIntPtr input_json_len, byte* options_json, UIntPtr options_json_len, out NativeBytes request_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_resume_pending", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_resume_pending(SafeWechatPayHandle wechatpay, out NativeBytes report_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_refresh_certificates", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_refresh_certificates(SafeWechatPayHandle wechatpay, out UIntPtr count_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_callback_begin", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_callback_begin(SafeWechatPayHandle wechatpay, byte* method, UIntPtr method_len, byte* target, UIntPtr target_len, NativeHeader* headers, UIntPtr headers_len, byte* body, UIntPtr body_len, long now_unix_ms, out SafeHttpResponseHandle response_out, out SafeWechatPayEventHandle event_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_event_earlier_claims", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_event_earlier_claims(SafeWechatPayEventHandle @event);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_event_json", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_event_json(SafeWechatPayEventHandle @event, out byte* json_out, out UIntPtr json_len_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_callback_finish", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_callback_finish(SafeWechatPayHandle wechatpay, SafeWechatPayEventHandle @event, [MarshalAs(UnmanagedType.U1)] bool accepted, byte* reason, UIntPtr reason_len, long now_unix_ms, out SafeHttpResponseHandle response_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_event_free", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern void cardbridge_wechatpay_event_free(IntPtr @event);

        // ---- bytes, HTTP messages ---------------------------------------------------------------

        [DllImport(Lib, EntryPoint = "cardbridge_bytes_free", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern void cardbridge_bytes_free(ref NativeBytes bytes);

        [DllImport(Lib, EntryPoint = "cardbridge_http_response_status", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern ushort cardbridge_http_response_status(SafeHttpResponseHandle response);

        [DllImport(Lib, EntryPoint = "cardbridge_http_response_header_count", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern UIntPtr cardbridge_http_response_header_count(SafeHttpResponseHandle response);

        [DllImport(Lib, EntryPoint = "cardbridge_http_response_header", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_http_response_header(SafeHttpResponseHandle response, UIntPtr index, out NativeHeader header_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_http_response_body", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_http_response_body(SafeHttpResponseHandle response, out byte* body_out, out UIntPtr body_len_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_http_response_diagnosis", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_http_response_diagnosis(SafeHttpResponseHandle response, byte* buf, UIntPtr len, out UIntPtr out_n);

        [DllImport(Lib, EntryPoint = "cardbridge_http_response_free", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern void cardbridge_http_response_free(IntPtr response);

        // ---- results and error objects ----------------------------------------------------------

        [DllImport(Lib, EntryPoint = "cardbridge_result_name", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern IntPtr cardbridge_result_name(uint code);

        [DllImport(Lib, EntryPoint = "cardbridge_error_code", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_error_code(IntPtr err);

        [DllImport(Lib, EntryPoint = "cardbridge_error_message", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_error_message(IntPtr err, byte* buf, UIntPtr len, out UIntPtr out_n);

        [DllImport(Lib, EntryPoint = "cardbridge_error_field", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_error_field(IntPtr err, byte* buf, UIntPtr len, out UIntPtr out_n);

        [DllImport(Lib, EntryPoint = "cardbridge_error_limit", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_error_limit(IntPtr err, byte* buf, UIntPtr len, out UIntPtr out_n);

        [DllImport(Lib, EntryPoint = "cardbridge_error_remote_code", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_error_remote_code(IntPtr err, byte* buf, UIntPtr len, out UIntPtr out_n);

        [DllImport(Lib, EntryPoint = "cardbridge_error_remote_message", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_error_remote_message(IntPtr err, byte* buf, UIntPtr len, out UIntPtr out_n);

        [DllImport(Lib, EntryPoint = "cardbridge_error_remote_status", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_error_remote_status(IntPtr err, byte* buf, UIntPtr len, out UIntPtr out_n);

        [DllImport(Lib, EntryPoint = "cardbridge_error_remote_detail", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_error_remote_detail(IntPtr err, byte* buf, UIntPtr len, out UIntPtr out_n);

        [DllImport(Lib, EntryPoint = "cardbridge_error_outbox_id", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_error_outbox_id(IntPtr err, byte* buf, UIntPtr len, out UIntPtr out_n);

        [DllImport(Lib, EntryPoint = "cardbridge_error_request_id", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_error_request_id(IntPtr err, byte* buf, UIntPtr len, out UIntPtr out_n);

        [DllImport(Lib, EntryPoint = "cardbridge_error_attempts", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_error_attempts(IntPtr err);

        [DllImport(Lib, EntryPoint = "cardbridge_error_http_status", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern ushort cardbridge_error_http_status(IntPtr err);

        [DllImport(Lib, EntryPoint = "cardbridge_error_free", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern void cardbridge_error_free(IntPtr err);

        /// <summary>Only in native builds with the <c>ffi-test</c> feature; calling it on other
        /// builds throws <see cref="EntryPointNotFoundException"/>.</summary>
        [DllImport(Lib, EntryPoint = "cardbridge_test_panic", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_test_panic(out IntPtr error_out);

        /// <summary>Sets an integration's clock (<c>mode</c> 0 system, 1 fixed at <c>value_ms</c>, 2 system
        /// shifted by <c>value_ms</c>). Only in native builds with the <c>ffi-test</c> feature; calling it
        /// on other builds throws <see cref="EntryPointNotFoundException"/>.</summary>
        [DllImport(Lib, EntryPoint = "cardbridge_test_alipayplus_set_clock", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_test_alipayplus_set_clock(SafeAlipayPlusHandle alipayplus, uint mode, long value_ms, out IntPtr error_out);

        /// <summary>As <see cref="cardbridge_test_alipayplus_set_clock"/>, for a WeChat Pay integration.</summary>
        [DllImport(Lib, EntryPoint = "cardbridge_test_wechatpay_set_clock", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_test_wechatpay_set_clock(SafeWechatPayHandle wechatpay, uint mode, long value_ms, out IntPtr error_out);

        // ---- keys ------------------------------------------------------------------------------

        [DllImport(Lib, EntryPoint = "cardbridge_private_key_from_pem", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_private_key_from_pem(byte* pem, UIntPtr pem_len, out SafePrivateKeyHandle key_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_private_key_free", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern void cardbridge_private_key_free(IntPtr key);

        [DllImport(Lib, EntryPoint = "cardbridge_private_key_public_key_pem", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_private_key_public_key_pem(SafePrivateKeyHandle key, out NativeBytes pem_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_public_key_from_pem", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_public_key_from_pem(byte* pem, UIntPtr pem_len, out SafePublicKeyHandle key_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_public_key_free", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern void cardbridge_public_key_free(IntPtr key);

        // ---- store -------------------------------------------------------------------------------

        [DllImport(Lib, EntryPoint = "cardbridge_store_open_sqlite", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_store_open_sqlite(byte* path, UIntPtr path_len, out SafeStoreHandle store_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_store_open_postgres", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_store_open_postgres(byte* conninfo, UIntPtr conninfo_len, out SafeStoreHandle store_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_store_new_memory", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_store_new_memory(out SafeStoreHandle store_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_store_outbox_list", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_store_outbox_list(SafeStoreHandle store, byte* query_json, UIntPtr query_len, out NativeBytes json_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_store_outbox_get", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_store_outbox_get(SafeStoreHandle store, byte* id, UIntPtr id_len, out NativeBytes json_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_store_outbox_count_pending", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_store_outbox_count_pending(SafeStoreHandle store, out ulong count_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_store_free", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern void cardbridge_store_free(IntPtr store);

        // ---- version -----------------------------------------------------------------------------

        [DllImport(Lib, EntryPoint = "cardbridge_cancel_token_new", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_cancel_token_new(out SafeCancelTokenHandle token_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_cancel_token_cancel", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern void cardbridge_cancel_token_cancel(SafeCancelTokenHandle token);

        [DllImport(Lib, EntryPoint = "cardbridge_cancel_token_is_cancelled", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        [return: MarshalAs(UnmanagedType.U1)]
        internal static extern bool cardbridge_cancel_token_is_cancelled(SafeCancelTokenHandle token);

        [DllImport(Lib, EntryPoint = "cardbridge_cancel_token_free", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern void cardbridge_cancel_token_free(IntPtr token);

        [DllImport(Lib, EntryPoint = "cardbridge_alipayplus_issue_card_with_options", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_alipayplus_issue_card_with_options(SafeAlipayPlusHandle alipayplus, byte* request_json, UIntPtr request_json_len, NativeCallOptions* options, out NativeBytes response_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_confirm_with_options", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_confirm_with_options(SafeWechatPayHandle wechatpay, byte* input_json, UIntPtr input_json_len, NativeCallOptions* options, out NativeBytes answer_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_update_user_card_with_options", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_update_user_card_with_options(SafeWechatPayHandle wechatpay, byte* input_json, UIntPtr input_json_len, NativeCallOptions* options, out NativeBytes answer_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_set_log_callback", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_set_log_callback(uint min_level, CardbridgeLog.NativeCallback callback, IntPtr user_data, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_alipayplus_metrics", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_alipayplus_metrics(SafeAlipayPlusHandle client, out NativeBytes json_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_metrics", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_metrics(SafeWechatPayHandle client, out NativeBytes json_out, out IntPtr error_out);

        // Bring your own transport. The _complete functions consume `prepared` on every path: the
        // caller marks its SafeHandle invalid once the call returned (ByoTransport.Complete).
        [DllImport(Lib, EntryPoint = "cardbridge_prepared_purpose", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_prepared_purpose(SafePreparedHandle prepared);

        [DllImport(Lib, EntryPoint = "cardbridge_prepared_wait_ms", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern ulong cardbridge_prepared_wait_ms(SafePreparedHandle prepared);

        [DllImport(Lib, EntryPoint = "cardbridge_prepared_method", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_prepared_method(SafePreparedHandle prepared, out byte* method_out, out UIntPtr method_len_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_prepared_url", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_prepared_url(SafePreparedHandle prepared, out byte* url_out, out UIntPtr url_len_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_prepared_outbox_id", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_prepared_outbox_id(SafePreparedHandle prepared, out byte* id_out, out UIntPtr id_len_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_prepared_header_count", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern UIntPtr cardbridge_prepared_header_count(SafePreparedHandle prepared);

        [DllImport(Lib, EntryPoint = "cardbridge_prepared_header", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_prepared_header(SafePreparedHandle prepared, UIntPtr index, out NativeHeader header_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_prepared_body", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_prepared_body(SafePreparedHandle prepared, out byte* body_out, out UIntPtr body_len_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_prepared_free", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern void cardbridge_prepared_free(IntPtr prepared);

        [DllImport(Lib, EntryPoint = "cardbridge_alipayplus_issue_card_prepare", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_alipayplus_issue_card_prepare(SafeAlipayPlusHandle alipayplus, byte* request_json, UIntPtr request_json_len, out NativeBytes response_out, out SafePreparedHandle prepared_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_alipayplus_issue_card_complete", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_alipayplus_issue_card_complete(SafeAlipayPlusHandle alipayplus, SafePreparedHandle prepared, uint reply, ushort status, NativeHeader* headers, UIntPtr headers_len, byte* body, UIntPtr body_len, out NativeBytes response_out, out SafePreparedHandle prepared_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_confirm_prepare", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_confirm_prepare(SafeWechatPayHandle wechatpay, byte* input_json, UIntPtr input_json_len, out NativeBytes answer_out, out SafePreparedHandle prepared_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_wechatpay_confirm_complete", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint cardbridge_wechatpay_confirm_complete(SafeWechatPayHandle wechatpay, SafePreparedHandle prepared, uint reply, ushort status, NativeHeader* headers, UIntPtr headers_len, byte* body, UIntPtr body_len, out NativeBytes answer_out, out SafePreparedHandle prepared_out, out IntPtr error_out);

        [DllImport(Lib, EntryPoint = "cardbridge_version", CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern IntPtr cardbridge_version();
    }
}
