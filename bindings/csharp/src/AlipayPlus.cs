using System;
using System.Collections.Generic;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace CardBridge
{
    /// <summary>Which rules <see cref="AlipayPlus.Validate"/> applies.</summary>
    public enum Direction : uint
    {
        /// <summary>A body received from the platform: required fields, types, lengths, counts.</summary>
        Inbound = 1,
        /// <summary>A body we send: every rule, including forbidden <c>@ # ?</c> and a known <c>customerBelongsTo</c>.</summary>
        Outbound = 2,
    }

    /// <summary>The platform → merchant API of a pending <see cref="Call"/>.</summary>
    public enum ApiKind : uint
    {
        /// <summary><c>notifyCardRegistration</c>: a user asked for a membership card.</summary>
        NotifyCardRegistration = 1,
        /// <summary><c>inquireCardDetail</c>.</summary>
        InquireCardDetail = 2,
        /// <summary><c>updateCardDetail</c>.</summary>
        UpdateCardDetail = 3,
        /// <summary><c>inquireMemberAssets</c>.</summary>
        InquireMemberAssets = 4,
    }

    /// <summary>
    /// One merchant's Alipay+ membership-card integration: configuration, keys, the store, the
    /// <c>issueCard</c> client and the inbound handler. Thread-safe: one instance serves every thread.
    /// </summary>
    public sealed class AlipayPlus : IDisposable
    {
        internal readonly SafeAlipayPlusHandle Handle;

        /// <summary>
        /// Builds the integration from its JSON configuration (<c>client_id</c>,
        /// <c>merchant_private_key</c>, <c>platform_public_key</c> as PEM text, optionally
        /// <c>base_url</c>, <c>path_prefix</c>, <c>retry</c>, timeouts, ... as documented for
        /// <c>cardbridge_alipayplus_new</c> in <c>cardbridge.h</c>).
        /// </summary>
        /// <param name="configJson">The configuration as JSON text.</param>
        /// <param name="store">The store to use; when null, the SQLite file at <c>store_path</c> in the
        /// configuration is opened. The integration keeps its own reference.</param>
        /// <exception cref="ArgumentNullException"><paramref name="configJson"/> is null.</exception>
        /// <exception cref="ConfigurationException">The configuration is invalid (<see cref="InvalidKeyException"/> for keys).</exception>
        /// <exception cref="ObjectDisposedException"><paramref name="store"/> was disposed.</exception>
        public unsafe AlipayPlus(string configJson, Store store = null)
        {
            var config = Utf8.Encode(configJson, "configJson");
            CardBridgeLibrary.EnsureCompatible();
            // A fresh invalid handle marshals as NULL: "open store_path yourself".
            var storeHandle = store == null ? new SafeStoreHandle() : store.Handle;
            storeHandle.ThrowIfClosed("Store");
            SafeAlipayPlusHandle handle;
            IntPtr error;
            uint rc;
            fixed (byte* p = config)
            {
                rc = NativeMethods.cardbridge_alipayplus_new(p, (UIntPtr)config.Length, storeHandle, out handle, out error);
            }
            Handle = Interop.Take(rc, error, handle);
        }

        /// <summary>
        /// Issues a membership card: validates the request, records it in the durable outbox, signs and
        /// sends it, retrying ambiguous outcomes with the same body. Blocks for the retry budget at most.
        /// The same requestId always means the same request: a later call returns the stored outcome.
        /// </summary>
        /// <param name="requestJson">The <c>issueCard</c> request in wire format, e.g. from <see cref="BuildIssueCard"/>.</param>
        /// <returns>The platform's verified answer body (JSON with <c>cardNo</c>), exactly as received.</returns>
        /// <exception cref="ValidationException">The request breaks a rule (nothing was stored or sent).</exception>
        /// <exception cref="IdempotencyConflictException">The requestId was used with another body.</exception>
        /// <exception cref="RemoteFailedException">The platform refused for good (<c>F</c>).</exception>
        /// <exception cref="RemoteUnknownException">No definite answer within the budget (or
        /// <paramref name="deadline"/>): retry later with the same request.</exception>
        /// <param name="deadline">Bounds this call's retries instead of the configured deadline (null: configured).</param>
        public string IssueCard(string requestJson, TimeSpan? deadline = null)
        {
            return IssueCardCore(Utf8.Encode(requestJson, "requestJson"), deadline, CancellationToken.None);
        }

        /// <summary><see cref="IssueCard"/> on a thread-pool thread, so a UI or request thread is not blocked.
        /// Cancelling <paramref name="cancellationToken"/> stops the retries before the next attempt: the task then
        /// ends with <see cref="OperationCanceledException"/> and the request stays pending in the outbox (call again
        /// with the same request, or resume it, for its outcome).</summary>
        public Task<string> IssueCardAsync(string requestJson, TimeSpan? deadline = null,
            CancellationToken cancellationToken = default(CancellationToken))
        {
            var request = Utf8.Encode(requestJson, "requestJson");
            return Task.Run(() => IssueCardCore(request, deadline, cancellationToken), cancellationToken);
        }

        private unsafe string IssueCardCore(byte[] request, TimeSpan? deadline, CancellationToken cancellationToken)
        {
            Handle.ThrowIfClosed("AlipayPlus");
            return Calls.Run((NativeCallOptions* options, out NativeBytes response, out IntPtr error) =>
            {
                fixed (byte* p = request)
                {
                    return NativeMethods.cardbridge_alipayplus_issue_card_with_options(Handle, p, (UIntPtr)request.Length,
                        options, out response, out error);
                }
            }, deadline, cancellationToken);
        }

        /// <summary>Bring your own transport, step 1: validates and records the request like
        /// <see cref="IssueCard"/> and returns the signed request to send with your own HTTP stack
        /// (<see cref="TransportStep.Next"/>), or the stored answer when the requestId is already final
        /// (<see cref="TransportStep.Answer"/>). Nothing is sent. Exceptions as for <see cref="IssueCard"/>.</summary>
        public unsafe TransportStep PrepareIssueCard(string requestJson)
        {
            var request = Utf8.Encode(requestJson, "requestJson");
            Handle.ThrowIfClosed("AlipayPlus");
            return ByoTransport.Prepare(request, (byte* p, UIntPtr n, out NativeBytes a, out SafePreparedHandle next,
                out IntPtr e) => NativeMethods.cardbridge_alipayplus_issue_card_prepare(Handle, p, n, out a, out next, out e));
        }

        /// <summary>Bring your own transport, step 2: verifies and judges your answer to
        /// <paramref name="prepared"/> (consumed) as <see cref="IssueCard"/> does and returns the verified answer
        /// (the same <see cref="IssueCard"/> returns) or the next request (a retry, after its
        /// <see cref="PreparedRequest.WaitMs"/>).</summary>
        /// <exception cref="RemoteFailedException">The platform refused for good (<c>F</c>).</exception>
        /// <exception cref="RemoteUnknownException">The retry budget is spent: the request stays pending.</exception>
        public unsafe TransportStep CompleteIssueCard(PreparedRequest prepared, TransportAnswer answer)
        {
            Handle.ThrowIfClosed("AlipayPlus");
            return ByoTransport.Complete(prepared, answer, (SafePreparedHandle p, uint r, ushort s, NativeHeader* h, UIntPtr hn,
                byte* b, UIntPtr bn, out NativeBytes a, out SafePreparedHandle next, out IntPtr e) =>
                NativeMethods.cardbridge_alipayplus_issue_card_complete(Handle, p, r, s, h, hn, b, bn, out a, out next, out e));
        }

        /// <summary><see cref="IssueCard"/> over your own HTTP stack: <paramref name="send"/> sends the
        /// prepared request unchanged and returns the raw answer (or <see cref="TransportAnswer.Failed"/>);
        /// the backoff between attempts is waited here.</summary>
        public string IssueCardOver(string requestJson, Func<PreparedRequest, TransportAnswer> send)
        {
            return ByoTransport.Drive(PrepareIssueCard(requestJson), send, CompleteIssueCard);
        }

        /// <summary>
        /// Builds a validated <c>issueCard</c> request answering a <c>notifyCardRegistration</c>,
        /// reusing its <c>appId</c>, <c>customerBelongsTo</c>, <c>requestId</c> and <c>customerId</c>.
        /// </summary>
        /// <param name="registrationJson">The registration body as received (e.g. <see cref="Call.RequestJson"/>).</param>
        /// <param name="externalCustomerId">The merchant's own user ID.</param>
        /// <param name="registerDate">An ISO 8601 date-time with offset, e.g. <c>2026-11-23T18:00:00+08:00</c>.</param>
        /// <param name="cardFieldsJson">A JSON array of <c>{"fieldCode":..,"fieldValue":..}</c> objects.</param>
        /// <param name="externalCardNo">Optional <c>externalCardNo</c>, the merchant's card number (max 64).</param>
        /// <param name="expireDate">Optional <c>expireDate</c>, an ISO 8601 date-time with offset.</param>
        /// <param name="extendInfo">Optional <c>extendInfo</c> (max 2048).</param>
        /// <returns>The request as compact wire JSON, ready for <see cref="IssueCard"/>.</returns>
        /// <exception cref="ValidationException">A value breaks a rule (field path such as
        /// <c>issueCard.extendInfo</c> and limit in the exception); the optional members are validated here too.</exception>
        public static unsafe string BuildIssueCard(string registrationJson, string externalCustomerId,
            string registerDate, string cardFieldsJson, string externalCardNo = null, string expireDate = null,
            string extendInfo = null)
        {
            var registration = Utf8.Encode(registrationJson, "registrationJson");
            var customer = Utf8.Encode(externalCustomerId, "externalCustomerId");
            var date = Utf8.Encode(registerDate, "registerDate");
            var fields = Utf8.Encode(cardFieldsJson, "cardFieldsJson");
            byte[] options = null;
            if (externalCardNo != null || expireDate != null || extendInfo != null)
            {
                options = Encoding.UTF8.GetBytes(JsonText.Object(new[]
                {
                    new KeyValuePair<string, string>("externalCardNo", externalCardNo),
                    new KeyValuePair<string, string>("expireDate", expireDate),
                    new KeyValuePair<string, string>("extendInfo", extendInfo),
                }));
            }
            CardBridgeLibrary.EnsureCompatible();
            NativeBytes request;
            IntPtr error;
            uint rc;
            fixed (byte* r = registration)
            fixed (byte* c = customer)
            fixed (byte* d = date)
            fixed (byte* f = fields)
            fixed (byte* o = options)
            {
                rc = NativeMethods.cardbridge_alipayplus_build_issue_card(r, (UIntPtr)registration.Length, c,
                    (UIntPtr)customer.Length, d, (UIntPtr)date.Length, f, (UIntPtr)fields.Length,
                    o, (UIntPtr)(options == null ? 0 : options.Length), out request, out error);
            }
            CardbridgeException.Check(rc, error);
            return request.TakeString();
        }

        /// <summary>This integration's counters since it was built, as one JSON object (README "Metrics"):
        /// <c>inbound</c> (per API, per result), <c>outbound_attempts</c> (per kind, per outcome), <c>retries</c>,
        /// <c>duplicates_replayed</c>, <c>inbound_reclaimed</c>, <c>lease_takeovers</c>, <c>outcomes_unknown</c>,
        /// <c>certificate_refreshes</c>, <c>store_errors</c> and <c>pending_entries</c> (pending issueCard entries).</summary>
        public string Metrics()
        {
            Handle.ThrowIfClosed("AlipayPlus");
            NativeBytes json;
            IntPtr error;
            var rc = NativeMethods.cardbridge_alipayplus_metrics(Handle, out json, out error);
            CardbridgeException.Check(rc, error);
            return json.TakeString();
        }

        /// <summary>
        /// Re-sends every pending <c>issueCard</c> of the store (e.g. at start-up after a crash).
        /// </summary>
        /// <returns>A JSON array, one element per pending entry, oldest first:
        /// <c>{"id":..,"ok":true,"response":{..}}</c> or <c>{"id":..,"ok":false,"code":..,"name":..,"message":..}</c>.</returns>
        public string ResumePending()
        {
            Handle.ThrowIfClosed("AlipayPlus");
            NativeBytes report;
            IntPtr error;
            var rc = NativeMethods.cardbridge_alipayplus_resume_pending(Handle, out report, out error);
            CardbridgeException.Check(rc, error);
            return report.TakeString();
        }

        /// <summary>
        /// Step 1 of handling a platform → merchant call: verifies the signature, validates the body and,
        /// for <c>notifyCardRegistration</c>, claims its requestId. Problems with the platform's request
        /// (bad signature, invalid field, duplicate) are answered by the library in
        /// <see cref="InboundResult.Response"/>; otherwise <see cref="InboundResult.Call"/> awaits your decision.
        /// </summary>
        /// <param name="method">The HTTP method as received.</param>
        /// <param name="target">The request-target as received (path plus <c>?query</c>).</param>
        /// <param name="headers">The request headers (null means none).</param>
        /// <param name="body">The raw body bytes exactly as received (null means empty).</param>
        /// <param name="nowUnixMs">The current Unix time in milliseconds; null reads the clock.</param>
        public unsafe InboundResult Begin(string method, string target,
            IEnumerable<KeyValuePair<string, string>> headers, byte[] body, long? nowUnixMs = null)
        {
            var m = Utf8.Encode(method, "method");
            var t = Utf8.Encode(target, "target");
            var block = new NativeHeaderBlock(headers);
            var raw = body ?? new byte[0];
            var now = Interop.Now(nowUnixMs);
            Handle.ThrowIfClosed("AlipayPlus");
            SafeHttpResponseHandle response;
            SafeAlipayPlusCallHandle call;
            IntPtr error;
            uint rc;
            fixed (byte* mp = m)
            fixed (byte* tp = t)
            fixed (byte* bp = block.Buffer)
            fixed (byte* body_p = raw)
            fixed (NativeHeader* hp = block.Views)
            {
                block.Point(bp);
                rc = NativeMethods.cardbridge_alipayplus_begin(Handle, mp, (UIntPtr)m.Length, tp, (UIntPtr)t.Length,
                    hp, (UIntPtr)block.Views.Length, body_p, (UIntPtr)raw.Length, now, out response, out call, out error);
            }
            if (rc != 0)
            {
                response.SetHandleAsInvalid();
                call.SetHandleAsInvalid();
                throw CardbridgeException.FromOwnedError(error, (ResultCode)rc);
            }
            if (!call.IsInvalid)
            {
                response.Dispose();
                return new InboundResult(null, new Call(call));
            }
            call.Dispose();
            return new InboundResult(new HttpResponse(response), null);
        }

        /// <summary>
        /// Step 2: turns your decision into the signed answer for <paramref name="call"/>. A final answer
        /// (<c>S</c>/<c>F</c>) of a <c>notifyCardRegistration</c> is stored durably before this returns,
        /// so duplicates get the same bytes. The call is not disposed; dispose it afterwards.
        /// </summary>
        /// <param name="call">The pending call from <see cref="Begin(string, string, IEnumerable{KeyValuePair{string, string}}, byte[], long?)"/>.</param>
        /// <param name="decisionJson">The answer body in wire format; <c>{}</c> means <c>S SUCCESS</c>.</param>
        /// <param name="nowUnixMs">The current Unix time in milliseconds; null reads the clock.</param>
        /// <exception cref="ValidationException">The decision is invalid; the call stays usable.</exception>
        /// <exception cref="AlreadyUsedException">The call was already finished.</exception>
        /// <exception cref="ObjectDisposedException">The call or this integration was disposed.</exception>
        public unsafe HttpResponse Finish(Call call, string decisionJson, long? nowUnixMs = null)
        {
            if (call == null)
            {
                throw new ArgumentNullException("call");
            }
            var decision = Utf8.Encode(decisionJson, "decisionJson");
            var now = Interop.Now(nowUnixMs);
            Handle.ThrowIfClosed("AlipayPlus");
            SafeHttpResponseHandle response;
            IntPtr error;
            uint rc;
            // A call is a mutable native object: one thread at a time.
            lock (call.Sync)
            {
                call.Handle.ThrowIfClosed("Call");
                fixed (byte* p = decision)
                {
                    rc = NativeMethods.cardbridge_alipayplus_finish(Handle, call.Handle, p, (UIntPtr)decision.Length,
                        now, out response, out error);
                }
            }
            return new HttpResponse(Interop.Take(rc, error, response));
        }

        /// <summary>
        /// Finishes a call you cannot decide now with <c>U UNKNOWN_EXCEPTION</c>, so the platform
        /// retries later; a <c>notifyCardRegistration</c> claim is released.
        /// </summary>
        /// <exception cref="AlreadyUsedException">The call was already finished.</exception>
        public HttpResponse FinishUnknown(Call call, long? nowUnixMs = null)
        {
            if (call == null)
            {
                throw new ArgumentNullException("call");
            }
            var now = Interop.Now(nowUnixMs);
            Handle.ThrowIfClosed("AlipayPlus");
            SafeHttpResponseHandle response;
            IntPtr error;
            uint rc;
            lock (call.Sync)
            {
                call.Handle.ThrowIfClosed("Call");
                rc = NativeMethods.cardbridge_alipayplus_finish_unknown(Handle, call.Handle, now, out response, out error);
            }
            return new HttpResponse(Interop.Take(rc, error, response));
        }

        /// <summary>Deletes inbound idempotency records older than the configured retention.</summary>
        /// <returns>The number of records deleted.</returns>
        public long PurgeExpired(long? nowUnixMs = null)
        {
            var now = Interop.Now(nowUnixMs);
            Handle.ThrowIfClosed("AlipayPlus");
            UIntPtr purged;
            IntPtr error;
            var rc = NativeMethods.cardbridge_alipayplus_purge_expired(Handle, now, out purged, out error);
            CardbridgeException.Check(rc, error);
            return Interop.ToLong(purged);
        }

        /// <summary>
        /// Validates an Alipay+ membership body without sending anything and returns it normalised
        /// (compact JSON, unknown members kept, <c>BALANCE</c> as an object).
        /// </summary>
        /// <param name="message">The body's name: an API (<c>issueCard</c>, <c>notifyCardRegistration</c>, ...)
        /// or its answer (<c>issueCardResponse</c>, ...).</param>
        /// <param name="json">The body.</param>
        /// <param name="direction">Which rules apply.</param>
        /// <exception cref="ValidationException">A field breaks a rule (field path and limit in the exception).</exception>
        /// <exception cref="InvalidJsonException">The body is not JSON of the expected shape.</exception>
        public static unsafe string Validate(string message, string json, Direction direction)
        {
            var name = Utf8.Encode(message, "message");
            var body = Utf8.Encode(json, "json");
            CardBridgeLibrary.EnsureCompatible();
            NativeBytes normalized;
            IntPtr error;
            uint rc;
            fixed (byte* n = name)
            fixed (byte* b = body)
            {
                rc = NativeMethods.cardbridge_alipayplus_validate(n, (UIntPtr)name.Length, b, (UIntPtr)body.Length,
                    (uint)direction, out normalized, out error);
            }
            CardbridgeException.Check(rc, error);
            return normalized.TakeString();
        }

        /// <summary>Releases this integration. Pending calls stay valid objects but can only be
        /// finished through an integration, so keep one until they are done.</summary>
        public void Dispose()
        {
            Handle.Dispose();
        }
    }

    /// <summary>
    /// A verified, validated platform call waiting for your decision. While it exists, a
    /// <c>notifyCardRegistration</c> holds a claim on its requestId (duplicates are answered
    /// "unknown, retry"); disposing it undecided releases the claim.
    /// </summary>
    public sealed class Call : IDisposable
    {
        internal readonly SafeAlipayPlusCallHandle Handle;
        internal readonly object Sync = new object();

        internal unsafe Call(SafeAlipayPlusCallHandle handle)
        {
            Handle = handle;
            try
            {
                Api = (ApiKind)NativeMethods.cardbridge_alipayplus_call_api(handle);
                EarlierClaims = NativeMethods.cardbridge_alipayplus_call_earlier_claims(handle);
                byte* json;
                UIntPtr len;
                IntPtr error;
                var rc = NativeMethods.cardbridge_alipayplus_call_request(handle, out json, out len, out error);
                CardbridgeException.Check(rc, error);
                // The view lives as long as the native call: copy it now.
                RequestJson = Utf8.Decode(json, len);
                GC.KeepAlive(handle);
            }
            catch
            {
                handle.Dispose();
                throw;
            }
        }

        /// <summary>Which API the platform called.</summary>
        public ApiKind Api { get; private set; }

        /// <summary>Earlier claims on this requestId that expired undecided before this delivery took it over.</summary>
        public uint EarlierClaims { get; private set; }

        /// <summary>True when an earlier host's claim on this requestId expired undecided (a slow or crashed
        /// host): it may already have acted, so look your own records up by requestId before acting again.</summary>
        public bool Redelivered { get { return EarlierClaims > 0; } }


        /// <summary>The validated request body exactly as received (wire JSON).</summary>
        public string RequestJson { get; private set; }

        /// <summary>Releases the call; undecided, its <c>notifyCardRegistration</c> claim is released.</summary>
        public void Dispose()
        {
            Handle.Dispose();
        }
    }

    /// <summary>What <see cref="AlipayPlus.Begin(string, string, IEnumerable{KeyValuePair{string, string}}, byte[], long?)"/>
    /// produced: exactly one of <see cref="Response"/> and <see cref="Call"/> is not null.</summary>
    public sealed class InboundResult : IDisposable
    {
        internal InboundResult(HttpResponse response, Call call)
        {
            Response = response;
            Call = call;
        }

        /// <summary>The answer to send now, decided by the library; null when <see cref="Call"/> is set.</summary>
        public HttpResponse Response { get; private set; }

        /// <summary>The call awaiting your decision; null when <see cref="Response"/> is set.</summary>
        public Call Call { get; private set; }

        /// <summary>Whether the host must decide (<see cref="Call"/> is set).</summary>
        public bool NeedsDecision
        {
            get { return Call != null; }
        }

        /// <summary>Disposes whichever of <see cref="Response"/> and <see cref="Call"/> is set.</summary>
        public void Dispose()
        {
            if (Response != null)
            {
                Response.Dispose();
            }
            if (Call != null)
            {
                Call.Dispose();
            }
        }
    }
}
