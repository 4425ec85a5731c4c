using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

namespace CardBridge
{
    /// <summary>
    /// One merchant's WeChat Pay card-member integration: merchant key and serial, the WeChat Pay
    /// public key and/or platform certificates, the APIv3 key, the store, the user-card client
    /// (confirm, read, update, points) and the card-event callback handler.
    /// Thread-safe: one instance serves every thread.
    /// </summary>
    public sealed class WechatPay : IDisposable
    {
        internal readonly SafeWechatPayHandle Handle;

        /// <summary>
        /// Builds the integration from its JSON configuration: <c>mchid</c>, <c>merchant_serial_no</c>,
        /// <c>merchant_private_key</c> (PEM), <c>api_v3_key</c> (32 ASCII bytes) and a WeChat Pay key
        /// source (<c>wechatpay_public_key_id</c> with <c>wechatpay_public_key</c>,
        /// <c>platform_certificates</c>, or <c>certificate_mode: true</c>); optionally <c>base_url</c>,
        /// <c>retry</c>, timeouts, ... as documented for <c>cardbridge_wechatpay_new</c> in <c>cardbridge.h</c>.
        /// </summary>
        /// <param name="configJson">The configuration as JSON text.</param>
        /// <param name="store">The store to use; when null, the SQLite file at <c>store_path</c> in the
        /// configuration is opened. The integration keeps its own reference.</param>
        /// <exception cref="ArgumentNullException"><paramref name="configJson"/> is null.</exception>
        /// <exception cref="ConfigurationException">The configuration is invalid, e.g. an APIv3 key that is
        /// not 32 bytes (<see cref="InvalidKeyException"/> for keys).</exception>
        /// <exception cref="ObjectDisposedException"><paramref name="store"/> was disposed.</exception>
        public unsafe WechatPay(string configJson, Store store = null)
        {
            var config = Utf8.Encode(configJson, "configJson");
            CardBridgeLibrary.EnsureCompatible();
            // A fresh invalid handle marshals as NULL: "open store_path yourself".
            var storeHandle = store == null ? new SafeStoreHandle() : store.Handle;
            storeHandle.ThrowIfClosed("Store");
            SafeWechatPayHandle handle;
            IntPtr error;
            uint rc;
            fixed (byte* p = config)
            {
                rc = NativeMethods.cardbridge_wechatpay_new(p, (UIntPtr)config.Length, storeHandle, out handle, out error);
            }
            Handle = Interop.Take(rc, error, handle);
        }

        /// <summary>
        /// Syncs a card-opening result (<c>POST .../user-cards/{user_card_code}/confirm</c>). Validated
        /// before anything is stored or sent, then recorded in the durable outbox: the same
        /// (<c>card_id</c>, <c>user_card_code</c>) is confirmed once, a repeat returns the stored answer
        /// without sending, ambiguous outcomes are retried and then reconciled by reading the card.
        /// Blocks for the retry budget at most.
        /// </summary>
        /// <param name="inputJson">One object: <c>user_card_code</c>, <c>card_id</c>, <c>brand_id</c>,
        /// <c>openid</c>, <c>user_card_confirm_state</c> and the optional body members, with sensitive fields
        /// (<c>phone_number</c>, user information values) in cleartext: the library encrypts them.</param>
        /// <returns>The answer as JSON: <c>{"status":200,"body":{user card, sensitive fields decrypted},
        /// "undecryptable":[..],"request_id":..}</c>. The body holds personal data: do not log it.</returns>
        /// <exception cref="ValidationException">The input breaks a rule (field path and limit; nothing was sent).</exception>
        /// <exception cref="IdempotencyConflictException">This card was already confirmed with other input.</exception>
        /// <exception cref="RemoteFailedException">WeChat Pay refused for good (4xx): <see cref="CardbridgeException.RemoteCode"/>,
        /// <see cref="CardbridgeException.RemoteMessage"/> and <see cref="CardbridgeException.HttpStatus"/> say why.</exception>
        /// <exception cref="RemoteUnknownException">No definite answer within the budget: retry later
        /// with the same input, or use <see cref="ResumePending"/>.</exception>
        /// <param name="deadline">Bounds this call's retries instead of the configured deadline (null: configured).</param>
        public unsafe string Confirm(string inputJson, TimeSpan? deadline = null)
        {
            return CallWithOptions(NativeMethods.cardbridge_wechatpay_confirm_with_options,
                Utf8.Encode(inputJson, "inputJson"), deadline, CancellationToken.None);
        }

        /// <summary><see cref="Confirm(string, TimeSpan?)"/> with a typed input (its <see cref="WechatModel.ToJson"/>;
        /// the same validation and outbox key as the JSON form).</summary>
        public string Confirm(ConfirmInput input, TimeSpan? deadline = null)
        {
            if (input == null)
            {
                throw new ArgumentNullException("input");
            }
            return Confirm(input.ToJson(), deadline);
        }

        /// <summary>Bring your own transport, step 1: validates, encrypts and records the confirm like
        /// <see cref="Confirm(string, TimeSpan?)"/> and returns the signed request to send with your own HTTP stack (a read-back
        /// <c>GET</c> of the card first when the entry existed before), or the stored answer when the confirm
        /// is already final. Nothing is sent.</summary>
        public unsafe TransportStep PrepareConfirm(string inputJson)
        {
            var input = Utf8.Encode(inputJson, "inputJson");
            Handle.ThrowIfClosed("WechatPay");
            return ByoTransport.Prepare(input, (byte* p, UIntPtr n, out NativeBytes a, out SafePreparedHandle next,
                out IntPtr e) => NativeMethods.cardbridge_wechatpay_confirm_prepare(Handle, p, n, out a, out next, out e));
        }

        /// <summary>Bring your own transport, step 2: verifies and judges your answer to
        /// <paramref name="prepared"/> (consumed) as <see cref="Confirm(string, TimeSpan?)"/> does and returns the answer (the
        /// same <see cref="Confirm(string, TimeSpan?)"/> returns) or the next request: after an ambiguous outcome a read-back
        /// of the card, never a blind re-send.</summary>
        public unsafe TransportStep CompleteConfirm(PreparedRequest prepared, TransportAnswer answer)
        {
            Handle.ThrowIfClosed("WechatPay");
            return ByoTransport.Complete(prepared, answer, (SafePreparedHandle p, uint r, ushort s, NativeHeader* h, UIntPtr hn,
                byte* b, UIntPtr bn, out NativeBytes a, out SafePreparedHandle next, out IntPtr e) =>
                NativeMethods.cardbridge_wechatpay_confirm_complete(Handle, p, r, s, h, hn, b, bn, out a, out next, out e));
        }

        /// <summary><see cref="Confirm(string, TimeSpan?)"/> over your own HTTP stack; <paramref name="send"/> as for
        /// <see cref="AlipayPlus.IssueCardOver"/>.</summary>
        public string ConfirmOver(string inputJson, Func<PreparedRequest, TransportAnswer> send)
        {
            return ByoTransport.Drive(PrepareConfirm(inputJson), send, CompleteConfirm);
        }

        /// <summary><see cref="Confirm(string, TimeSpan?)"/> on a thread-pool thread. Cancelling <paramref name="cancellationToken"/>
        /// stops the retries before the next attempt: the task ends with <see cref="OperationCanceledException"/>
        /// and the confirm stays pending (the next call or resume reads the card back first).</summary>
        public unsafe Task<string> ConfirmAsync(string inputJson, TimeSpan? deadline = null,
            CancellationToken cancellationToken = default(CancellationToken))
        {
            var input = Utf8.Encode(inputJson, "inputJson");
            return Task.Run(() => CallWithOptions(NativeMethods.cardbridge_wechatpay_confirm_with_options, input,
                deadline, cancellationToken), cancellationToken);
        }

        /// <summary>Reads one user card (<c>GET .../user-cards/{user_card_code}</c>).</summary>
        /// <param name="inputJson"><c>{"user_card_code","brand_id","card_id","openid"}</c>.</param>
        /// <returns>The answer JSON, as for <see cref="Confirm(string, TimeSpan?)"/>.</returns>
        /// <exception cref="ValidationException">The input breaks a rule.</exception>
        /// <exception cref="RemoteFailedException">WeChat Pay refused (e.g. 404: no such card).</exception>
        /// <exception cref="RemoteUnknownException">No definite answer within the budget.</exception>
        public unsafe string GetUserCard(string inputJson)
        {
            return Call(NativeMethods.cardbridge_wechatpay_get_user_card, inputJson);
        }

        /// <summary>Updates a user card (<c>PATCH .../user-cards/{user_card_code}</c>); not recorded in the outbox.</summary>
        /// <param name="inputJson"><c>user_card_code</c>, <c>card_id</c> and the body members, sensitive
        /// fields in cleartext.</param>
        /// <returns>The answer JSON, as for <see cref="Confirm(string, TimeSpan?)"/>.</returns>
        /// <exception cref="ValidationException">The input breaks a rule.</exception>
        /// <exception cref="RemoteFailedException">WeChat Pay refused for good.</exception>
        /// <exception cref="RemoteUnknownException">No definite answer within the budget.</exception>
        /// <param name="deadline">Bounds this call's retries instead of the configured deadline (null: configured).</param>
        public unsafe string UpdateUserCard(string inputJson, TimeSpan? deadline = null)
        {
            return CallWithOptions(NativeMethods.cardbridge_wechatpay_update_user_card_with_options,
                Utf8.Encode(inputJson, "inputJson"), deadline, CancellationToken.None);
        }

        /// <summary><see cref="UpdateUserCard"/> on a thread-pool thread, cancellable between attempts.</summary>
        public unsafe Task<string> UpdateUserCardAsync(string inputJson, TimeSpan? deadline = null,
            CancellationToken cancellationToken = default(CancellationToken))
        {
            var input = Utf8.Encode(inputJson, "inputJson");
            return Task.Run(() => CallWithOptions(NativeMethods.cardbridge_wechatpay_update_user_card_with_options,
                input, deadline, cancellationToken), cancellationToken);
        }

        private unsafe delegate uint OptionsCall(SafeWechatPayHandle wechatpay, byte* input, UIntPtr inputLen,
            NativeCallOptions* options, out NativeBytes answer, out IntPtr error);

        private unsafe string CallWithOptions(OptionsCall call, byte[] input, TimeSpan? deadline,
            CancellationToken cancellationToken)
        {
            Handle.ThrowIfClosed("WechatPay");
            return Calls.Run((NativeCallOptions* options, out NativeBytes answer, out IntPtr error) =>
            {
                fixed (byte* p = input)
                {
                    return call(Handle, p, (UIntPtr)input.Length, options, out answer, out error);
                }
            }, deadline, cancellationToken);
        }

        /// <summary>Syncs a user's point balance (<c>POST .../user-points/sync</c>).</summary>
        /// <param name="inputJson"><c>{"out_request_no","brand_id","card_id","openid","user_card_code","point_balance"}</c>.</param>
        /// <returns>The answer JSON, as for <see cref="Confirm(string, TimeSpan?)"/> (<c>"status":204</c> on success).</returns>
        /// <exception cref="ValidationException">The input breaks a rule.</exception>
        /// <exception cref="RemoteFailedException">WeChat Pay refused for good.</exception>
        /// <exception cref="RemoteUnknownException">No definite answer within the budget.</exception>
        public unsafe string SyncUserPoints(string inputJson)
        {
            return Call(NativeMethods.cardbridge_wechatpay_sync_user_points, inputJson);
        }

        /// <summary><see cref="SyncUserPoints(string)"/> with a typed input.</summary>
        public string SyncUserPoints(PointsSyncInput input)
        {
            if (input == null)
            {
                throw new ArgumentNullException("input");
            }
            return SyncUserPoints(input.ToJson());
        }

        /// <summary>Creates a card template (<c>POST .../cards</c>) whose <c>notify_url</c> receives the card events; keyed by (<c>brand_id</c>, <c>out_request_no</c>) in the outbox.</summary>
        /// <param name="inputJson">One JSON object in the wire names (path members such as <c>card_id</c> included).</param>
        /// <returns>The answer JSON, as for <see cref="Confirm(string, TimeSpan?)"/>.</returns>
        /// <exception cref="ValidationException">The input breaks a rule (nothing was sent).</exception>
        /// <exception cref="RemoteFailedException">WeChat Pay refused for good.</exception>
        /// <exception cref="RemoteUnknownException">No definite answer within the budget: retry with the same input.</exception>
        public unsafe string CreateCardTemplate(string inputJson)
        {
            return Call(NativeMethods.cardbridge_wechatpay_create_card_template, inputJson);
        }

        /// <summary>Lists card templates: <c>brand_id</c>, optional <c>state</c>, <c>offset</c>, <c>limit</c> (1-20).</summary>
        /// <param name="inputJson">One JSON object in the wire names (path members such as <c>card_id</c> included).</param>
        /// <returns>The answer JSON, as for <see cref="Confirm(string, TimeSpan?)"/>.</returns>
        /// <exception cref="ValidationException">The input breaks a rule (nothing was sent).</exception>
        /// <exception cref="RemoteFailedException">WeChat Pay refused for good.</exception>
        /// <exception cref="RemoteUnknownException">No definite answer within the budget: retry with the same input.</exception>
        public unsafe string ListCardTemplates(string inputJson)
        {
            return Call(NativeMethods.cardbridge_wechatpay_list_card_templates, inputJson);
        }

        /// <summary>Reads one card template: <c>brand_id</c>, <c>card_id</c>.</summary>
        /// <param name="inputJson">One JSON object in the wire names (path members such as <c>card_id</c> included).</param>
        /// <returns>The answer JSON, as for <see cref="Confirm(string, TimeSpan?)"/>.</returns>
        /// <exception cref="ValidationException">The input breaks a rule (nothing was sent).</exception>
        /// <exception cref="RemoteFailedException">WeChat Pay refused for good.</exception>
        /// <exception cref="RemoteUnknownException">No definite answer within the budget: retry with the same input.</exception>
        public unsafe string GetCardTemplate(string inputJson)
        {
            return Call(NativeMethods.cardbridge_wechatpay_get_card_template, inputJson);
        }

        /// <summary>Updates a card template (<c>PATCH</c>); reconciled by reading it back.</summary>
        /// <param name="inputJson">One JSON object in the wire names (path members such as <c>card_id</c> included).</param>
        /// <returns>The answer JSON, as for <see cref="Confirm(string, TimeSpan?)"/>.</returns>
        /// <exception cref="ValidationException">The input breaks a rule (nothing was sent).</exception>
        /// <exception cref="RemoteFailedException">WeChat Pay refused for good.</exception>
        /// <exception cref="RemoteUnknownException">No definite answer within the budget: retry with the same input.</exception>
        public unsafe string UpdateCardTemplate(string inputJson)
        {
            return Call(NativeMethods.cardbridge_wechatpay_update_card_template, inputJson);
        }

        /// <summary>Removes a card template (<c>POST .../invalidate</c> or <c>DELETE</c>, per <c>card_template_removal</c>).</summary>
        /// <param name="inputJson">One JSON object in the wire names (path members such as <c>card_id</c> included).</param>
        /// <returns>The answer JSON, as for <see cref="Confirm(string, TimeSpan?)"/>.</returns>
        /// <exception cref="ValidationException">The input breaks a rule (nothing was sent).</exception>
        /// <exception cref="RemoteFailedException">WeChat Pay refused for good.</exception>
        /// <exception cref="RemoteUnknownException">No definite answer within the budget: retry with the same input.</exception>
        public unsafe string RemoveCardTemplate(string inputJson)
        {
            return Call(NativeMethods.cardbridge_wechatpay_remove_card_template, inputJson);
        }

        /// <summary>Lists a user's cards (sensitive fields decrypted): <c>brand_id</c>, <c>openid</c>, optional <c>user_card_state</c>, <c>offset</c>, <c>limit</c>.</summary>
        /// <param name="inputJson">One JSON object in the wire names (path members such as <c>card_id</c> included).</param>
        /// <returns>The answer JSON, as for <see cref="Confirm(string, TimeSpan?)"/>.</returns>
        /// <exception cref="ValidationException">The input breaks a rule (nothing was sent).</exception>
        /// <exception cref="RemoteFailedException">WeChat Pay refused for good.</exception>
        /// <exception cref="RemoteUnknownException">No definite answer within the budget: retry with the same input.</exception>
        public unsafe string ListUserCards(string inputJson)
        {
            return Call(NativeMethods.cardbridge_wechatpay_list_user_cards, inputJson);
        }

        /// <summary>Invalidates a user card, irreversibly; <c>invalid_reason</c> is required. Keyed by (<c>card_id</c>, <c>user_card_code</c>).</summary>
        /// <param name="inputJson">One JSON object in the wire names (path members such as <c>card_id</c> included).</param>
        /// <returns>The answer JSON, as for <see cref="Confirm(string, TimeSpan?)"/>.</returns>
        /// <exception cref="ValidationException">The input breaks a rule (nothing was sent).</exception>
        /// <exception cref="RemoteFailedException">WeChat Pay refused for good.</exception>
        /// <exception cref="RemoteUnknownException">No definite answer within the budget: retry with the same input.</exception>
        public unsafe string InvalidateUserCard(string inputJson)
        {
            return Call(NativeMethods.cardbridge_wechatpay_invalidate_user_card, inputJson);
        }

        /// <summary>Imports an existing member by openid; sensitive fields in cleartext are encrypted. Keyed by (<c>card_id</c>, <c>user_card_code</c>).</summary>
        /// <param name="inputJson">One JSON object in the wire names (path members such as <c>card_id</c> included).</param>
        /// <returns>The answer JSON, as for <see cref="Confirm(string, TimeSpan?)"/>.</returns>
        /// <exception cref="ValidationException">The input breaks a rule (nothing was sent).</exception>
        /// <exception cref="RemoteFailedException">WeChat Pay refused for good.</exception>
        /// <exception cref="RemoteUnknownException">No definite answer within the budget: retry with the same input.</exception>
        public unsafe string ImportUserCard(string inputJson)
        {
            return Call(NativeMethods.cardbridge_wechatpay_import_user_card, inputJson);
        }

        /// <summary>Imports a member by phone: a <see cref="ConfigurationException"/> unless <c>import_by_phone_enabled</c> (not live on the platform).</summary>
        /// <param name="inputJson">One JSON object in the wire names (path members such as <c>card_id</c> included).</param>
        /// <returns>The answer JSON, as for <see cref="Confirm(string, TimeSpan?)"/>.</returns>
        /// <exception cref="ValidationException">The input breaks a rule (nothing was sent).</exception>
        /// <exception cref="RemoteFailedException">WeChat Pay refused for good.</exception>
        /// <exception cref="RemoteUnknownException">No definite answer within the budget: retry with the same input.</exception>
        public unsafe string ImportUserCardByPhone(string inputJson)
        {
            return Call(NativeMethods.cardbridge_wechatpay_import_user_card_by_phone, inputJson);
        }

        /// <summary>Posts a member feed (<c>cell</c> or <c>cell_message</c>); keyed by (<c>brand_id</c>, <c>out_request_no</c>).</summary>
        /// <param name="inputJson">One JSON object in the wire names (path members such as <c>card_id</c> included).</param>
        /// <returns>The answer JSON, as for <see cref="Confirm(string, TimeSpan?)"/>.</returns>
        /// <exception cref="ValidationException">The input breaks a rule (nothing was sent).</exception>
        /// <exception cref="RemoteFailedException">WeChat Pay refused for good.</exception>
        /// <exception cref="RemoteUnknownException">No definite answer within the budget: retry with the same input.</exception>
        public unsafe string CreateUserFeed(string inputJson)
        {
            return Call(NativeMethods.cardbridge_wechatpay_create_user_feed, inputJson);
        }

        /// <summary>Answers a <c>POINT_EXCHANGE_COUPON</c> event; keyed by (<c>brand_id</c>, <c>record_id</c>).</summary>
        /// <param name="inputJson">One JSON object in the wire names (path members such as <c>card_id</c> included).</param>
        /// <returns>The answer JSON, as for <see cref="Confirm(string, TimeSpan?)"/>.</returns>
        /// <exception cref="ValidationException">The input breaks a rule (nothing was sent).</exception>
        /// <exception cref="RemoteFailedException">WeChat Pay refused for good.</exception>
        /// <exception cref="RemoteUnknownException">No definite answer within the budget: retry with the same input.</exception>
        public unsafe string ConfirmExchangeCoupon(string inputJson)
        {
            return Call(NativeMethods.cardbridge_wechatpay_confirm_exchange_coupon, inputJson);
        }

        /// <summary>Creates a membership coupon activity; keyed by (<c>brand_id</c>, <c>out_request_no</c>).</summary>
        /// <param name="inputJson">One JSON object in the wire names (path members such as <c>card_id</c> included).</param>
        /// <returns>The answer JSON, as for <see cref="Confirm(string, TimeSpan?)"/>.</returns>
        /// <exception cref="ValidationException">The input breaks a rule (nothing was sent).</exception>
        /// <exception cref="RemoteFailedException">WeChat Pay refused for good.</exception>
        /// <exception cref="RemoteUnknownException">No definite answer within the budget: retry with the same input.</exception>
        public unsafe string CreateMembershipActivity(string inputJson)
        {
            return Call(NativeMethods.cardbridge_wechatpay_create_membership_activity, inputJson);
        }

        /// <summary>Lists membership activities.</summary>
        /// <param name="inputJson">One JSON object in the wire names (path members such as <c>card_id</c> included).</param>
        /// <returns>The answer JSON, as for <see cref="Confirm(string, TimeSpan?)"/>.</returns>
        /// <exception cref="ValidationException">The input breaks a rule (nothing was sent).</exception>
        /// <exception cref="RemoteFailedException">WeChat Pay refused for good.</exception>
        /// <exception cref="RemoteUnknownException">No definite answer within the budget: retry with the same input.</exception>
        public unsafe string ListMembershipActivities(string inputJson)
        {
            return Call(NativeMethods.cardbridge_wechatpay_list_membership_activities, inputJson);
        }

        /// <summary>Reads one membership activity: <c>brand_id</c>, <c>activity_id</c>.</summary>
        /// <param name="inputJson">One JSON object in the wire names (path members such as <c>card_id</c> included).</param>
        /// <returns>The answer JSON, as for <see cref="Confirm(string, TimeSpan?)"/>.</returns>
        /// <exception cref="ValidationException">The input breaks a rule (nothing was sent).</exception>
        /// <exception cref="RemoteFailedException">WeChat Pay refused for good.</exception>
        /// <exception cref="RemoteUnknownException">No definite answer within the budget: retry with the same input.</exception>
        public unsafe string GetMembershipActivity(string inputJson)
        {
            return Call(NativeMethods.cardbridge_wechatpay_get_membership_activity, inputJson);
        }

        /// <summary>Updates a membership activity; reconciled by reading it back.</summary>
        /// <param name="inputJson">One JSON object in the wire names (path members such as <c>card_id</c> included).</param>
        /// <returns>The answer JSON, as for <see cref="Confirm(string, TimeSpan?)"/>.</returns>
        /// <exception cref="ValidationException">The input breaks a rule (nothing was sent).</exception>
        /// <exception cref="RemoteFailedException">WeChat Pay refused for good.</exception>
        /// <exception cref="RemoteUnknownException">No definite answer within the budget: retry with the same input.</exception>
        public unsafe string UpdateMembershipActivity(string inputJson)
        {
            return Call(NativeMethods.cardbridge_wechatpay_update_membership_activity, inputJson);
        }

        /// <summary>Terminates a membership activity; reconciled by reading it back.</summary>
        /// <param name="inputJson">One JSON object in the wire names (path members such as <c>card_id</c> included).</param>
        /// <returns>The answer JSON, as for <see cref="Confirm(string, TimeSpan?)"/>.</returns>
        /// <exception cref="ValidationException">The input breaks a rule (nothing was sent).</exception>
        /// <exception cref="RemoteFailedException">WeChat Pay refused for good.</exception>
        /// <exception cref="RemoteUnknownException">No definite answer within the budget: retry with the same input.</exception>
        public unsafe string TerminateMembershipActivity(string inputJson)
        {
            return Call(NativeMethods.cardbridge_wechatpay_terminate_membership_activity, inputJson);
        }

        /// <summary>A join-component token (<c>POST .../pre-auth-tokens</c>, valid 1 h): <c>brand_id</c>, <c>card_id</c>, <c>openid</c>; a fresh one per call.</summary>
        /// <param name="inputJson"><c>{"brand_id","card_id","openid"}</c>.</param>
        /// <returns>The answer JSON, as for <see cref="Confirm(string, TimeSpan?)"/>: the body holds <c>token</c> and <c>expire_time</c>.</returns>
        /// <exception cref="ValidationException">The input breaks a rule (nothing was sent).</exception>
        /// <exception cref="RemoteFailedException">WeChat Pay refused for good.</exception>
        public unsafe string CreatePreAuthToken(string inputJson)
        {
            return Call(NativeMethods.cardbridge_wechatpay_create_pre_auth_token, inputJson);
        }

        /// <summary>A payment-code component token (<c>POST .../pay-view-tokens</c>, 10 min, single use).</summary>
        /// <param name="inputJson"><c>{"brand_id","card_id","openid"}</c>.</param>
        /// <returns>The answer JSON, as for <see cref="Confirm(string, TimeSpan?)"/>: the body holds <c>token</c> and <c>expire_time</c>.</returns>
        /// <exception cref="ValidationException">The input breaks a rule (nothing was sent).</exception>
        /// <exception cref="RemoteFailedException">WeChat Pay refused for good.</exception>
        public unsafe string CreatePayViewToken(string inputJson)
        {
            return Call(NativeMethods.cardbridge_wechatpay_create_pay_view_token, inputJson);
        }

        /// <summary>
        /// Validates <paramref name="inputJson"/> for a card-member <paramref name="operation"/>
        /// (<c>createCardTemplate</c>, <c>importUserCard</c>, ...) and returns the request it would send, without
        /// sending: <c>{"method","target","body"}</c>, sensitive fields shown as <c>&lt;encrypted&gt;</c>.
        /// </summary>
        /// <param name="operation">The operation name.</param>
        /// <param name="inputJson">The call's input.</param>
        /// <param name="optionsJson">Wire-form configuration members (<c>card_template_removal</c>,
        /// <c>user_feed_content_member</c>, ...), or null for the defaults.</param>
        /// <exception cref="ValidationException">A field breaks a rule.</exception>
        public static unsafe string Validate(string operation, string inputJson, string optionsJson = null)
        {
            var op = Utf8.Encode(operation, "operation");
            var input = Utf8.Encode(inputJson, "inputJson");
            var options = optionsJson == null ? null : Utf8.Encode(optionsJson, "optionsJson");
            CardBridgeLibrary.EnsureCompatible();
            NativeBytes request;
            IntPtr error;
            uint rc;
            fixed (byte* o = op)
            fixed (byte* i = input)
            fixed (byte* w = options)
            {
                rc = NativeMethods.cardbridge_wechatpay_validate(o, (UIntPtr)op.Length, i, (UIntPtr)input.Length,
                    options == null ? null : w, (UIntPtr)(options == null ? 0 : options.Length), out request, out error);
            }
            CardbridgeException.Check(rc, error);
            return request.TakeString();
        }

        private unsafe delegate uint ClientCall(SafeWechatPayHandle wechatpay, byte* input, UIntPtr inputLen,
            out NativeBytes answer, out IntPtr error);

        /// <summary>One client call: input JSON in, answer JSON out.</summary>
        private unsafe string Call(ClientCall call, string inputJson)
        {
            var input = Utf8.Encode(inputJson, "inputJson");
            Handle.ThrowIfClosed("WechatPay");
            NativeBytes answer;
            IntPtr error;
            uint rc;
            fixed (byte* p = input)
            {
                rc = call(Handle, p, (UIntPtr)input.Length, out answer, out error);
            }
            CardbridgeException.Check(rc, error);
            return answer.TakeString();
        }

        /// <summary>This integration's counters since it was built, as one JSON object (README "Metrics"):
        /// <c>inbound</c> (per API, per result), <c>outbound_attempts</c> (per kind, per outcome), <c>retries</c>,
        /// <c>duplicates_replayed</c>, <c>inbound_reclaimed</c>, <c>lease_takeovers</c>, <c>outcomes_unknown</c>,
        /// <c>certificate_refreshes</c>, <c>store_errors</c> and <c>pending_entries</c> (pending confirm entries; <c>inbound</c> has the API <c>callback</c> with <c>accepted</c>, <c>redeliver</c>, <c>refused</c>, <c>replayed</c>).</summary>
        public string Metrics()
        {
            Handle.ThrowIfClosed("WechatPay");
            NativeBytes json;
            IntPtr error;
            var rc = NativeMethods.cardbridge_wechatpay_metrics(Handle, out json, out error);
            CardbridgeException.Check(rc, error);
            return json.TakeString();
        }

        /// <summary>Re-sends every pending outbox entry of the store (<see cref="Confirm(string, TimeSpan?)"/> and the other mutating calls; call it at start-up after a crash).</summary>
        /// <returns>A JSON array, one element per pending confirm: <c>{"id":..,"ok":true,"answer":{..}}</c> or
        /// <c>{"id":..,"ok":false,"code":..,"name":..,"message":..}</c>.</returns>
        /// <exception cref="CardbridgeInternalException">The store could not be read.</exception>
        public string ResumePending()
        {
            Handle.ThrowIfClosed("WechatPay");
            NativeBytes report;
            IntPtr error;
            var rc = NativeMethods.cardbridge_wechatpay_resume_pending(Handle, out report, out error);
            CardbridgeException.Check(rc, error);
            return report.TakeString();
        }

        /// <summary>Downloads and installs the platform certificates (<c>GET /v3/certificates</c>), each
        /// authenticated with the APIv3 key and the answer verified with the certificate it names.</summary>
        /// <returns>The number of valid certificates installed.</returns>
        /// <exception cref="ConfigurationException">WeChat Pay has no platform certificates for this
        /// merchant (use the WeChat Pay public key).</exception>
        /// <exception cref="SignatureException">The answer's signature did not verify.</exception>
        /// <exception cref="DecryptException">A certificate could not be decrypted.</exception>
        /// <exception cref="TransportException">The download failed.</exception>
        public long RefreshCertificates()
        {
            Handle.ThrowIfClosed("WechatPay");
            UIntPtr count;
            IntPtr error;
            var rc = NativeMethods.cardbridge_wechatpay_refresh_certificates(Handle, out count, out error);
            CardbridgeException.Check(rc, error);
            return Interop.ToLong(count);
        }

        /// <summary>
        /// Step 1 of a card-event callback at your <c>notify_url</c>: verifies the <c>Wechatpay-*</c>
        /// headers (signature over the raw body, timestamp within 300 s, key by serial), decrypts the
        /// resource and its sensitive fields, and de-duplicates by notification id. Refusals (400/401),
        /// a processed duplicate's acknowledgement and "being handled, retry" (500) come back in
        /// <see cref="CallbackResult.Response"/>; otherwise <see cref="CallbackResult.Event"/> awaits you.
        /// </summary>
        /// <param name="method">The HTTP method as received.</param>
        /// <param name="target">The request-target as received.</param>
        /// <param name="headers">The request headers (names match case-insensitively; null means none).</param>
        /// <param name="body">The raw body bytes exactly as received (null means empty).</param>
        /// <param name="nowUnixMs">The current Unix time in milliseconds (as everywhere in the library); null reads the clock.</param>
        /// <exception cref="ArgumentNullException"><paramref name="method"/>, <paramref name="target"/> or a header
        /// name or value is null.</exception>
        /// <exception cref="ObjectDisposedException">This integration was disposed.</exception>
        public unsafe CallbackResult CallbackBegin(string method, string target,
            IEnumerable<KeyValuePair<string, string>> headers, byte[] body, long? nowUnixMs = null)
        {
            var m = Utf8.Encode(method, "method");
            var t = Utf8.Encode(target, "target");
            var block = new NativeHeaderBlock(headers);
            var raw = body ?? new byte[0];
            var now = Interop.Now(nowUnixMs);
            Handle.ThrowIfClosed("WechatPay");
            SafeHttpResponseHandle response;
            SafeWechatPayEventHandle ev;
            IntPtr error;
            uint rc;
            fixed (byte* mp = m)
            fixed (byte* tp = t)
            fixed (byte* bp = block.Buffer)
            fixed (byte* body_p = raw)
            fixed (NativeHeader* hp = block.Views)
            {
                block.Point(bp);
                rc = NativeMethods.cardbridge_wechatpay_callback_begin(Handle, mp, (UIntPtr)m.Length, tp,
                    (UIntPtr)t.Length, hp, (UIntPtr)block.Views.Length, body_p, (UIntPtr)raw.Length, now,
                    out response, out ev, out error);
            }
            if (rc != 0)
            {
                response.SetHandleAsInvalid();
                ev.SetHandleAsInvalid();
                throw CardbridgeException.FromOwnedError(error, (ResultCode)rc);
            }
            if (!ev.IsInvalid)
            {
                response.Dispose();
                return new CallbackResult(null, new Event(ev));
            }
            ev.Dispose();
            return new CallbackResult(new HttpResponse(Interop.Take(rc, error, response)), null);
        }

        /// <summary>
        /// Step 2: answers the callback of <paramref name="ev"/>. Accepted, the event is recorded, so
        /// WeChat's redeliveries are acknowledged without you, and the answer is 200
        /// <c>{"code":"SUCCESS"}</c> (or 204 per configuration); refused, the answer is 500
        /// <c>{"code":"FAIL","message":reason}</c> and WeChat redelivers later. The event is not disposed;
        /// dispose it afterwards.
        /// </summary>
        /// <param name="ev">The event from <see cref="CallbackBegin(string, string, IEnumerable{KeyValuePair{string, string}}, byte[], long?)"/>.</param>
        /// <param name="accepted">Whether you handled the event for good.</param>
        /// <param name="reason">Why it was refused (no personal data; null or empty for none).</param>
        /// <param name="nowUnixMs">The current Unix time in milliseconds (as everywhere in the library); null reads the clock.</param>
        /// <returns>The answer to send exactly as given.</returns>
        /// <exception cref="AlreadyUsedException">The event was already finished.</exception>
        /// <exception cref="ObjectDisposedException">The event or this integration was disposed.</exception>
        /// <exception cref="CardbridgeInternalException">The store could not be written.</exception>
        public unsafe HttpResponse CallbackFinish(Event ev, bool accepted, string reason = "", long? nowUnixMs = null)
        {
            if (ev == null)
            {
                throw new ArgumentNullException("ev");
            }
            var why = Utf8.Encode(reason ?? string.Empty, "reason");
            var now = Interop.Now(nowUnixMs);
            Handle.ThrowIfClosed("WechatPay");
            SafeHttpResponseHandle response;
            IntPtr error;
            uint rc;
            // An event is a mutable native object: one thread at a time.
            lock (ev.Sync)
            {
                ev.Handle.ThrowIfClosed("Event");
                fixed (byte* p = why)
                {
                    rc = NativeMethods.cardbridge_wechatpay_callback_finish(Handle, ev.Handle, accepted, p,
                        (UIntPtr)why.Length, now, out response, out error);
                }
            }
            return new HttpResponse(Interop.Take(rc, error, response));
        }

        /// <summary>Releases this integration. Pending events stay valid objects but can only be
        /// finished through an integration, so keep one until they are done.</summary>
        public void Dispose()
        {
            Handle.Dispose();
        }
    }

    /// <summary>
    /// A verified, decrypted WeChat Pay card event waiting for you. While it exists, its notification
    /// id is claimed (redeliveries are answered "retry later"); disposing it unfinished releases the
    /// claim so WeChat's next redelivery reaches you again. The parts are copied into managed memory
    /// when the object is created and stay readable after <see cref="Dispose"/>.
    /// </summary>
    public sealed class Event : IDisposable
    {
        internal readonly SafeWechatPayEventHandle Handle;
        internal readonly object Sync = new object();

        internal unsafe Event(SafeWechatPayEventHandle handle)
        {
            Handle = handle;
            try
            {
                byte* json;
                UIntPtr len;
                IntPtr error;
                var rc = NativeMethods.cardbridge_wechatpay_event_json(handle, out json, out len, out error);
                CardbridgeException.Check(rc, error);
                // The view lives as long as the native event: copy it now.
                Json = Utf8.Decode(json, len);
                GC.KeepAlive(handle);
                var members = JsonText.TopLevelStrings(Json);
                string value;
                Id = members.TryGetValue("id", out value) ? value : string.Empty;
                EventType = members.TryGetValue("event_type", out value) ? value : string.Empty;
                Kind = members.TryGetValue("kind", out value) ? value : string.Empty;
                EarlierClaims = NativeMethods.cardbridge_wechatpay_event_earlier_claims(handle);
            }
            catch
            {
                handle.Dispose();
                throw;
            }
        }

        /// <summary>Earlier claims on this notification id that expired before this delivery took it over.</summary>
        public uint EarlierClaims { get; private set; }

        /// <summary>True when an earlier host's claim on this notification expired before it was accepted:
        /// it may already have acted, so check before acting again.</summary>
        public bool Redelivered { get { return EarlierClaims > 0; } }

        /// <summary>The notification id (WeChat's redeliveries carry the same one).</summary>
        public string Id { get; private set; }

        /// <summary>The event type as sent, e.g. <c>BRAND_MEMBER_CARD_SP.USER_CARD.CREATE</c>.</summary>
        public string EventType { get; private set; }

        /// <summary><c>USER_CARD.CREATE</c>, <c>USER_CARD.DELETE</c>, <c>SYNC_USER_POINT</c>,
        /// <c>POINT_EXCHANGE_COUPON</c>, or the raw event type for others.</summary>
        public string Kind { get; private set; }

        /// <summary>The whole event as JSON: <c>{"id","event_type","kind","resource":{..},"undecryptable":[..]}</c>
        /// with the resource's sensitive fields (e.g. <c>phone_number</c>) in cleartext: do not log it.</summary>
        public string Json { get; private set; }

        /// <summary>Releases the event; unfinished, its claim is released.</summary>
        public void Dispose()
        {
            Handle.Dispose();
        }
    }

    /// <summary>What <see cref="WechatPay.CallbackBegin(string, string, IEnumerable{KeyValuePair{string, string}}, byte[], long?)"/>
    /// produced: exactly one of <see cref="Response"/> and <see cref="Event"/> is not null.</summary>
    public sealed class CallbackResult : IDisposable
    {
        internal CallbackResult(HttpResponse response, Event ev)
        {
            Response = response;
            Event = ev;
        }

        /// <summary>The answer to send now, decided by the library; null when <see cref="Event"/> is set.</summary>
        public HttpResponse Response { get; private set; }

        /// <summary>The event awaiting you; null when <see cref="Response"/> is set.</summary>
        public Event Event { get; private set; }

        /// <summary>Whether the host must handle an event (<see cref="Event"/> is set).</summary>
        public bool NeedsHandling
        {
            get { return Event != null; }
        }

        /// <summary>Disposes whichever of <see cref="Response"/> and <see cref="Event"/> is set.</summary>
        public void Dispose()
        {
            if (Response != null)
            {
                Response.Dispose();
            }
            if (Event != null)
            {
                Event.Dispose();
            }
        }
    }
}
