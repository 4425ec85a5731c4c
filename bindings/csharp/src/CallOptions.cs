// Per-call deadline and cancellation (cardbridge_call_options, cardbridge_cancel_token), shared by the
// blocking and the Task-returning methods of AlipayPlus and WechatPay.
using System;
using System.Runtime.InteropServices;
using System.Threading;

namespace CardBridge
{
    /// <summary>cardbridge_call_options.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct NativeCallOptions
    {
        public ulong DeadlineMs;
        public IntPtr Cancel;
    }

    /// <summary>const cardbridge_cancel_token * (Arc).</summary>
    internal sealed class SafeCancelTokenHandle : CardbridgeSafeHandle
    {
        /// <summary>Used by the marshaller for out-parameters.</summary>
        public SafeCancelTokenHandle()
        {
        }

        protected override bool ReleaseHandle()
        {
            NativeMethods.cardbridge_cancel_token_free(handle);
            return true;
        }
    }

    internal static class Calls
    {
        /// <summary>One native call taking per-call options.</summary>
        internal unsafe delegate uint WithOptions(NativeCallOptions* options, out NativeBytes result, out IntPtr error);

        /// <summary>Runs <paramref name="call"/> with <paramref name="deadline"/> (null: the configured retry
        /// deadline) and, when <paramref name="cancellationToken"/> can be cancelled, a native cancel token
        /// set by it: the call then starts no further attempt and this throws
        /// <see cref="OperationCanceledException"/> (its inner exception the <see cref="RemoteUnknownException"/>
        /// naming the pending outbox entry).</summary>
        internal static unsafe string Run(WithOptions call, TimeSpan? deadline, CancellationToken cancellationToken)
        {
            var options = new NativeCallOptions { DeadlineMs = DeadlineMs(deadline) };
            cancellationToken.ThrowIfCancellationRequested();
            NativeBytes result;
            IntPtr error;
            uint rc;
            if (!cancellationToken.CanBeCanceled)
            {
                rc = call(&options, out result, out error);
                CardbridgeException.Check(rc, error);
                return result.TakeString();
            }
            SafeCancelTokenHandle token;
            rc = NativeMethods.cardbridge_cancel_token_new(out token, out error);
            CardbridgeException.Check(rc, error);
            using (token)
            using (cancellationToken.Register(() => NativeMethods.cardbridge_cancel_token_cancel(token)))
            {
                var added = false;
                try
                {
                    token.DangerousAddRef(ref added);
                    options.Cancel = token.DangerousGetHandle();
                    rc = call(&options, out result, out error);
                }
                finally
                {
                    if (added)
                    {
                        token.DangerousRelease();
                    }
                }
            }
            try
            {
                CardbridgeException.Check(rc, error);
            }
            catch (RemoteUnknownException e) when (cancellationToken.IsCancellationRequested)
            {
                throw new OperationCanceledException(
                    "cancelled: the request stays pending (" + e.OutboxId + "); call again with the same input to get its outcome",
                    e, cancellationToken);
            }
            return result.TakeString();
        }

        private static ulong DeadlineMs(TimeSpan? deadline)
        {
            if (!deadline.HasValue)
            {
                return 0;
            }
            if (deadline.Value <= TimeSpan.Zero)
            {
                throw new ArgumentOutOfRangeException("deadline", "the deadline must be positive");
            }
            return (ulong)Math.Ceiling(deadline.Value.TotalMilliseconds);
        }
    }
}
