// Bring your own transport (issue 10.7): issueCard and WeChat Pay confirm sent over the host's own
// HTTP stack (HttpClient, WinHTTP, a proxy) while the library keeps the outbox, signing,
// verification and retry rules. Prepare returns the signed request; the host sends it unchanged;
// Complete takes the raw answer and returns the final answer or the next request.
using System;
using System.Collections.Generic;
using System.Collections.ObjectModel;

namespace CardBridge
{
    /// <summary>What a prepared request is for.</summary>
    public enum PreparedPurpose : uint
    {
        /// <summary>The request itself (a first send or a re-send of the stored bytes).</summary>
        Send = 1,
        /// <summary>A read-back finding out whether an earlier, ambiguous send took effect.</summary>
        ReadBack = 2,
    }

    /// <summary>What the host's exchange came to.</summary>
    public enum TransportReply : uint
    {
        /// <summary>An answer arrived (any status).</summary>
        Answered = 1,
        /// <summary>No connection was made: the request certainly did not arrive.</summary>
        NotSent = 2,
        /// <summary>The connection broke: the request may have arrived.</summary>
        NoAnswer = 3,
        /// <summary>No answer in time: the request may have arrived.</summary>
        TimedOut = 4,
    }

    /// <summary>The host's raw answer to a prepared request, or its transport failure.</summary>
    public sealed class TransportAnswer
    {
        /// <summary>An answer: status, headers in order and the raw body bytes.</summary>
        public TransportAnswer(int status, IEnumerable<KeyValuePair<string, string>> headers, byte[] body)
        {
            Reply = TransportReply.Answered;
            Status = status;
            Headers = new List<KeyValuePair<string, string>>(headers ?? new KeyValuePair<string, string>[0]);
            Body = body ?? new byte[0];
        }

        private TransportAnswer(TransportReply failure)
        {
            Reply = failure;
            Headers = new List<KeyValuePair<string, string>>();
            Body = new byte[0];
        }

        /// <summary>A transport failure (<see cref="TransportReply.NotSent"/>, <c>NoAnswer</c>, <c>TimedOut</c>).</summary>
        public static TransportAnswer Failed(TransportReply failure)
        {
            if (failure == TransportReply.Answered)
            {
                throw new ArgumentException("use the (status, headers, body) constructor for an answer", "failure");
            }
            return new TransportAnswer(failure);
        }

        /// <summary>Answered, or the failure.</summary>
        public TransportReply Reply { get; private set; }
        /// <summary>HTTP status (0 for a failure).</summary>
        public int Status { get; private set; }
        /// <summary>The headers as received.</summary>
        public IList<KeyValuePair<string, string>> Headers { get; private set; }
        /// <summary>The raw body bytes.</summary>
        public byte[] Body { get; private set; }
    }

    /// <summary>
    /// A signed request recorded in the outbox and leased to this caller. Send <see cref="Method"/> to
    /// <see cref="Url"/> with every header of <see cref="Headers"/> unchanged and <see cref="Body"/> byte for
    /// byte, after waiting <see cref="WaitMs"/>; then hand the answer to the matching <c>Complete…</c>, which
    /// consumes this object. Disposing it without completing releases the lease; the request stays pending.
    /// </summary>
    public sealed class PreparedRequest : IDisposable
    {
        private readonly object gate = new object();
        private SafePreparedHandle handle;
        private readonly byte[] body;

        internal unsafe PreparedRequest(SafePreparedHandle handle)
        {
            this.handle = handle;
            try
            {
                Method = View(NativeMethods.cardbridge_prepared_method, handle);
                Url = View(NativeMethods.cardbridge_prepared_url, handle);
                OutboxId = View(NativeMethods.cardbridge_prepared_outbox_id, handle);
                Headers = Interop.Headers(NativeMethods.cardbridge_prepared_header_count(handle),
                    (UIntPtr i, out NativeHeader h, out IntPtr e) =>
                        NativeMethods.cardbridge_prepared_header(handle, i, out h, out e));
                byte* data;
                UIntPtr len;
                IntPtr err;
                CardbridgeException.Check(NativeMethods.cardbridge_prepared_body(handle, out data, out len, out err), err);
                body = Utf8.Copy(data, len);
                WaitMs = (long)Math.Min(NativeMethods.cardbridge_prepared_wait_ms(handle), (ulong)long.MaxValue);
                Purpose = (PreparedPurpose)NativeMethods.cardbridge_prepared_purpose(handle);
                GC.KeepAlive(handle);
            }
            catch
            {
                handle.Dispose();
                throw;
            }
        }

        private unsafe delegate uint TextView(SafePreparedHandle p, out byte* text, out UIntPtr len, out IntPtr error);

        private static unsafe string View(TextView accessor, SafePreparedHandle p)
        {
            byte* text;
            UIntPtr len;
            IntPtr error;
            CardbridgeException.Check(accessor(p, out text, out len, out error), error);
            return Utf8.Decode(text, len);
        }

        /// <summary>HTTP method (<c>POST</c>, or <c>GET</c> for a read-back).</summary>
        public string Method { get; private set; }
        /// <summary>The absolute URL.</summary>
        public string Url { get; private set; }
        /// <summary>The outbox id of the request's entry.</summary>
        public string OutboxId { get; private set; }
        /// <summary>Every header to send, unchanged (they carry the signature).</summary>
        public IList<KeyValuePair<string, string>> Headers { get; private set; }
        /// <summary>A copy of the body to send byte for byte.</summary>
        public byte[] Body
        {
            get { return (byte[])body.Clone(); }
        }
        /// <summary>Milliseconds to wait before sending (the backoff before a retry; 0 at first).</summary>
        public long WaitMs { get; private set; }
        /// <summary>The request itself or a read-back.</summary>
        public PreparedPurpose Purpose { get; private set; }

        /// <summary>Gives the native object up to a consuming call (the caller marks it invalid after the
        /// call); <see cref="AlreadyUsedException"/> when it was completed or disposed already.</summary>
        internal SafePreparedHandle Take()
        {
            lock (gate)
            {
                if (handle == null || handle.IsClosed || handle.IsInvalid)
                {
                    throw new AlreadyUsedException(ResultCode.AlreadyUsed, CardbridgeException.NameOf(ResultCode.AlreadyUsed),
                        "prepared: already completed or disposed", "prepared");
                }
                var taken = handle;
                handle = null;
                return taken;
            }
        }

        /// <summary>Releases the request uncompleted (the lease is released; the entry stays pending).</summary>
        public void Dispose()
        {
            lock (gate)
            {
                if (handle != null)
                {
                    handle.Dispose();
                    handle = null;
                }
            }
        }
    }

    /// <summary>Where a bring-your-own-transport call stands: the final answer, or the next request.</summary>
    public sealed class TransportStep
    {
        internal TransportStep(string answer, PreparedRequest next)
        {
            Answer = answer;
            Next = next;
        }

        /// <summary>The final answer (as the blocking call returns it), or null while a request is to be sent.</summary>
        public string Answer { get; private set; }
        /// <summary>The next request to send, or null when <see cref="Answer"/> is final.</summary>
        public PreparedRequest Next { get; private set; }
        /// <summary>Whether <see cref="Answer"/> is final.</summary>
        public bool Done
        {
            get { return Next == null; }
        }
    }

    internal static class ByoTransport
    {
        internal unsafe delegate uint PrepareCall(byte* input, UIntPtr len, out NativeBytes answer,
            out SafePreparedHandle next, out IntPtr error);

        internal unsafe delegate uint CompleteCall(SafePreparedHandle prepared, uint reply, ushort status, NativeHeader* headers,
            UIntPtr headersLen, byte* body, UIntPtr bodyLen, out NativeBytes answer, out SafePreparedHandle next,
            out IntPtr error);

        internal static unsafe TransportStep Prepare(byte[] input, PrepareCall call)
        {
            NativeBytes answer;
            SafePreparedHandle next;
            IntPtr error;
            uint rc;
            fixed (byte* p = input)
            {
                rc = call(p, (UIntPtr)input.Length, out answer, out next, out error);
            }
            return Step(rc, error, answer, next);
        }

        internal static unsafe TransportStep Complete(PreparedRequest prepared, TransportAnswer reply, CompleteCall call)
        {
            if (prepared == null) throw new ArgumentNullException("prepared");
            if (reply == null) throw new ArgumentNullException("reply");
            if (reply.Status < 0 || reply.Status > ushort.MaxValue) throw new ArgumentOutOfRangeException("reply");
            var block = new NativeHeaderBlock(reply.Headers);
            var raw = reply.Body;
            NativeBytes answer;
            SafePreparedHandle next;
            IntPtr error;
            uint rc;
            var taken = prepared.Take();
            try
            {
                fixed (byte* bp = block.Buffer)
                fixed (byte* body = raw)
                fixed (NativeHeader* hp = block.Views)
                {
                    block.Point(bp);
                    rc = call(taken, (uint)reply.Reply, (ushort)reply.Status, hp, (UIntPtr)block.Views.Length, body,
                        (UIntPtr)raw.Length, out answer, out next, out error);
                }
            }
            finally
            {
                taken.SetHandleAsInvalid(); // the native call freed it, on every path
            }
            return Step(rc, error, answer, next);
        }

        private static TransportStep Step(uint rc, IntPtr error, NativeBytes answer, SafePreparedHandle next)
        {
            if (rc != 0)
            {
                if (next != null) next.SetHandleAsInvalid();
                throw CardbridgeException.FromOwnedError(error, (ResultCode)rc);
            }
            if (next != null && !next.IsInvalid)
            {
                answer.Dispose();
                return new TransportStep(null, new PreparedRequest(next));
            }
            if (next != null) next.SetHandleAsInvalid();
            return new TransportStep(answer.TakeString(), null);
        }

        internal static string Drive(TransportStep step, Func<PreparedRequest, TransportAnswer> send,
            Func<PreparedRequest, TransportAnswer, TransportStep> complete)
        {
            if (send == null) throw new ArgumentNullException("send");
            while (!step.Done)
            {
                var p = step.Next;
                if (p.WaitMs > 0) System.Threading.Thread.Sleep(TimeSpan.FromMilliseconds(p.WaitMs));
                TransportAnswer got;
                try
                {
                    got = send(p);
                }
                catch
                {
                    p.Dispose();
                    throw;
                }
                step = complete(p, got);
            }
            return step.Answer;
        }
    }
}
