using System;

namespace CardBridge
{
    /// <summary>An RSA private key (at least 2048 bits); the native copy is wiped when released.</summary>
    public sealed class PrivateKey : IDisposable
    {
        internal readonly SafePrivateKeyHandle Handle;

        private PrivateKey(SafePrivateKeyHandle handle)
        {
            Handle = handle;
        }

        /// <summary>Loads a key from PEM (<c>PRIVATE KEY</c> or <c>RSA PRIVATE KEY</c>) or bare Base64 DER.</summary>
        /// <exception cref="ArgumentNullException"><paramref name="pem"/> is null.</exception>
        /// <exception cref="InvalidKeyException">The key cannot be parsed, is encrypted or too weak.</exception>
        public static unsafe PrivateKey FromPem(string pem)
        {
            var bytes = Utf8.Encode(pem, "pem");
            CardBridgeLibrary.EnsureCompatible();
            SafePrivateKeyHandle handle;
            IntPtr error;
            uint rc;
            fixed (byte* p = bytes)
            {
                rc = NativeMethods.cardbridge_private_key_from_pem(p, (UIntPtr)bytes.Length, out handle, out error);
            }
            return new PrivateKey(Interop.Take(rc, error, handle));
        }

        /// <summary>The matching public key as PEM <c>PUBLIC KEY</c> text, e.g. to register on a console.</summary>
        public string PublicKeyPem()
        {
            Handle.ThrowIfClosed("PrivateKey");
            NativeBytes pem;
            IntPtr error;
            var rc = NativeMethods.cardbridge_private_key_public_key_pem(Handle, out pem, out error);
            CardbridgeException.Check(rc, error);
            return pem.TakeString();
        }

        /// <summary>Releases the key.</summary>
        public void Dispose()
        {
            Handle.Dispose();
        }
    }

    /// <summary>An RSA public key (at least 2048 bits).</summary>
    public sealed class PublicKey : IDisposable
    {
        internal readonly SafePublicKeyHandle Handle;

        private PublicKey(SafePublicKeyHandle handle)
        {
            Handle = handle;
        }

        /// <summary>Loads a key from PEM (<c>PUBLIC KEY</c> or <c>RSA PUBLIC KEY</c>) or bare Base64 DER.</summary>
        /// <exception cref="ArgumentNullException"><paramref name="pem"/> is null.</exception>
        /// <exception cref="InvalidKeyException">The key cannot be parsed or is too weak.</exception>
        public static unsafe PublicKey FromPem(string pem)
        {
            var bytes = Utf8.Encode(pem, "pem");
            CardBridgeLibrary.EnsureCompatible();
            SafePublicKeyHandle handle;
            IntPtr error;
            uint rc;
            fixed (byte* p = bytes)
            {
                rc = NativeMethods.cardbridge_public_key_from_pem(p, (UIntPtr)bytes.Length, out handle, out error);
            }
            return new PublicKey(Interop.Take(rc, error, handle));
        }

        /// <summary>Releases the key.</summary>
        public void Dispose()
        {
            Handle.Dispose();
        }
    }
}
