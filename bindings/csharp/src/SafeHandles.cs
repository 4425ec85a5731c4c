// One SafeHandle per native handle type (ffi-conventions.md §9.4). P/Invoke signatures take
// these types, so the marshaller holds a reference for the duration of each call and a
// concurrent Dispose cannot free the object underneath it. ReleaseHandle runs exactly once,
// from Dispose or from the finalizer, and calls the matching cardbridge_*_free.
using System;
using Microsoft.Win32.SafeHandles;

namespace CardBridge
{
    /// <summary>Base of the handle types: zero (NULL) is invalid, the handle owns its object.</summary>
    internal abstract class CardbridgeSafeHandle : SafeHandleZeroOrMinusOneIsInvalid
    {
        protected CardbridgeSafeHandle() : base(true)
        {
        }

        /// <summary>Throws <see cref="ObjectDisposedException"/> naming <paramref name="owner"/>
        /// once the handle has been released, so misuse fails in managed code with a clear type.</summary>
        internal void ThrowIfClosed(string owner)
        {
            if (IsClosed)
            {
                throw new ObjectDisposedException(owner);
            }
        }
    }

    /// <summary>const cardbridge_store * (Arc).</summary>
    internal sealed class SafeStoreHandle : CardbridgeSafeHandle
    {
        /// <summary>Used by the marshaller for out-parameters, and as the NULL store argument.</summary>
        public SafeStoreHandle()
        {
        }

        protected override bool ReleaseHandle()
        {
            NativeMethods.cardbridge_store_free(handle);
            return true;
        }
    }

    /// <summary>const cardbridge_alipayplus * (Arc).</summary>
    internal sealed class SafeAlipayPlusHandle : CardbridgeSafeHandle
    {
        /// <summary>Used by the marshaller for out-parameters.</summary>
        public SafeAlipayPlusHandle()
        {
        }

        protected override bool ReleaseHandle()
        {
            NativeMethods.cardbridge_alipayplus_free(handle);
            return true;
        }
    }

    /// <summary>cardbridge_alipayplus_call * (Box, one user at a time).</summary>
    internal sealed class SafeAlipayPlusCallHandle : CardbridgeSafeHandle
    {
        /// <summary>Used by the marshaller for out-parameters.</summary>
        public SafeAlipayPlusCallHandle()
        {
        }

        protected override bool ReleaseHandle()
        {
            NativeMethods.cardbridge_alipayplus_call_free(handle);
            return true;
        }
    }

    /// <summary>const cardbridge_wechatpay * (Arc).</summary>
    internal sealed class SafeWechatPayHandle : CardbridgeSafeHandle
    {
        /// <summary>Used by the marshaller for out-parameters.</summary>
        public SafeWechatPayHandle()
        {
        }

        protected override bool ReleaseHandle()
        {
            NativeMethods.cardbridge_wechatpay_free(handle);
            return true;
        }
    }

    /// <summary>cardbridge_wechatpay_event * (Box, one user at a time; freeing it unfinished
    /// releases its de-duplication claim).</summary>
    internal sealed class SafeWechatPayEventHandle : CardbridgeSafeHandle
    {
        /// <summary>Used by the marshaller for out-parameters.</summary>
        public SafeWechatPayEventHandle()
        {
        }

        protected override bool ReleaseHandle()
        {
            NativeMethods.cardbridge_wechatpay_event_free(handle);
            return true;
        }
    }

    /// <summary>cardbridge_prepared * (Box, one user at a time; freeing it uncompleted releases its
    /// outbox lease).</summary>
    internal sealed class SafePreparedHandle : CardbridgeSafeHandle
    {
        /// <summary>Used by the marshaller for out-parameters.</summary>
        public SafePreparedHandle()
        {
        }

        protected override bool ReleaseHandle()
        {
            NativeMethods.cardbridge_prepared_free(handle);
            return true;
        }
    }

    /// <summary>cardbridge_http_response * (Box).</summary>
    internal sealed class SafeHttpResponseHandle : CardbridgeSafeHandle
    {
        /// <summary>Used by the marshaller for out-parameters.</summary>
        public SafeHttpResponseHandle()
        {
        }

        protected override bool ReleaseHandle()
        {
            NativeMethods.cardbridge_http_response_free(handle);
            return true;
        }
    }

    /// <summary>const cardbridge_private_key * (Arc; key bytes wiped on release).</summary>
    internal sealed class SafePrivateKeyHandle : CardbridgeSafeHandle
    {
        /// <summary>Used by the marshaller for out-parameters.</summary>
        public SafePrivateKeyHandle()
        {
        }

        protected override bool ReleaseHandle()
        {
            NativeMethods.cardbridge_private_key_free(handle);
            return true;
        }
    }

    /// <summary>const cardbridge_public_key * (Arc).</summary>
    internal sealed class SafePublicKeyHandle : CardbridgeSafeHandle
    {
        /// <summary>Used by the marshaller for out-parameters.</summary>
        public SafePublicKeyHandle()
        {
        }

        protected override bool ReleaseHandle()
        {
            NativeMethods.cardbridge_public_key_free(handle);
            return true;
        }
    }
}
