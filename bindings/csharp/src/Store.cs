using System;
using System.Collections.Generic;
using System.Collections.ObjectModel;

namespace CardBridge
{
    /// <summary>
    /// A durable store for idempotency records and the <c>issueCard</c> outbox: an embedded SQLite
    /// database (one machine), a PostgreSQL database (several processes or nodes) or memory (tests).
    /// Thread-safe; several integrations may share one.
    /// An <see cref="AlipayPlus"/> built on a store keeps its own reference, so the store may be
    /// disposed as soon as the integrations exist.
    /// </summary>
    public sealed class Store : IDisposable
    {
        internal readonly SafeStoreHandle Handle;

        private Store(SafeStoreHandle handle)
        {
            Handle = handle;
        }

        /// <summary>Opens (creating it if needed) the SQLite store at <paramref name="path"/>.</summary>
        /// <exception cref="ArgumentNullException"><paramref name="path"/> is null.</exception>
        /// <exception cref="ConfigurationException">The file cannot be opened or used (the message says why).</exception>
        public static unsafe Store OpenSqlite(string path)
        {
            var bytes = Utf8.Encode(path, "path");
            CardBridgeLibrary.EnsureCompatible();
            SafeStoreHandle handle;
            IntPtr error;
            uint rc;
            fixed (byte* p = bytes)
            {
                rc = NativeMethods.cardbridge_store_open_sqlite(p, (UIntPtr)bytes.Length, out handle, out error);
            }
            return new Store(Interop.Take(rc, error, handle));
        }

        /// <summary>
        /// Opens the PostgreSQL store on the database named by <paramref name="dsn"/> (libpq key/value form
        /// such as <c>host=db.example.com dbname=cards user=cardbridge</c>, or a <c>postgresql://</c> URL) and
        /// migrates its schema. Several processes and nodes may share one database; any host other than
        /// loopback is reached over TLS with the server certificate verified. Connections are pooled and
        /// replaced by themselves after a connection loss or a server restart.
        /// </summary>
        /// <exception cref="ArgumentNullException"><paramref name="dsn"/> is null.</exception>
        /// <exception cref="ConfigurationException">The connection string cannot be parsed (field <c>conninfo</c>),
        /// asks for no TLS towards a remote host (<c>conninfo.sslmode</c>), the server refuses the login or the
        /// database, or the schema is newer than this library. Messages never contain the password.</exception>
        /// <exception cref="TransportException">The server cannot be reached; try again later.</exception>
        public static unsafe Store OpenPostgres(string dsn)
        {
            var bytes = Utf8.Encode(dsn, "dsn");
            CardBridgeLibrary.EnsureCompatible();
            SafeStoreHandle handle;
            IntPtr error;
            uint rc;
            fixed (byte* p = bytes)
            {
                rc = NativeMethods.cardbridge_store_open_postgres(p, (UIntPtr)bytes.Length, out handle, out error);
            }
            return new Store(Interop.Take(rc, error, handle));
        }

        /// <summary>Creates an in-memory store, lost when the last reference is released (tests, demos).</summary>
        public static Store InMemory()
        {
            CardBridgeLibrary.EnsureCompatible();
            SafeStoreHandle handle;
            IntPtr error;
            var rc = NativeMethods.cardbridge_store_new_memory(out handle, out error);
            return new Store(Interop.Take(rc, error, handle));
        }

        /// <summary>A page of outbox entries as a JSON array, oldest first, without bodies or answers
        /// (<c>id</c>, <c>kind</c>, <c>state</c>, <c>attempts</c>, <c>last_status</c>, <c>last_error</c>,
        /// <c>created_ms</c>, ...).</summary>
        /// <param name="queryJson">Filters, e.g. <c>{"state":"pending","limit":50,"after_id":"..."}</c>; null means all.</param>
        public unsafe string OutboxList(string queryJson = null)
        {
            var q = Utf8.Encode(queryJson ?? "{}", "queryJson");
            Handle.ThrowIfClosed("Store");
            NativeBytes json;
            IntPtr error;
            uint rc;
            fixed (byte* qp = q)
            {
                rc = NativeMethods.cardbridge_store_outbox_list(Handle, qp, (UIntPtr)q.Length, out json, out error);
            }
            CardbridgeException.Check(rc, error);
            return json.TakeString();
        }

        /// <summary>One outbox entry by id (e.g. <see cref="RemoteUnknownException.OutboxId"/>) as JSON with its
        /// <c>attempt_log</c>, without body or answer.</summary>
        public unsafe string OutboxGet(string outboxId)
        {
            var id = Utf8.Encode(outboxId, "outboxId");
            Handle.ThrowIfClosed("Store");
            NativeBytes json;
            IntPtr error;
            uint rc;
            fixed (byte* ip = id)
            {
                rc = NativeMethods.cardbridge_store_outbox_get(Handle, ip, (UIntPtr)id.Length, out json, out error);
            }
            CardbridgeException.Check(rc, error);
            return json.TakeString();
        }

        /// <summary>How many requests are still pending (outcome not known yet).</summary>
        public long OutboxCountPending()
        {
            Handle.ThrowIfClosed("Store");
            ulong n;
            IntPtr error;
            var rc = NativeMethods.cardbridge_store_outbox_count_pending(Handle, out n, out error);
            CardbridgeException.Check(rc, error);
            return (long)n;
        }

        /// <summary>Releases this reference to the store; the database closes with the last one.</summary>
        public void Dispose()
        {
            Handle.Dispose();
        }
    }

    /// <summary>Helpers shared by the wrappers.</summary>
    internal static class Interop
    {
        /// <summary>Returns the new handle of a successful constructor call, or invalidates it
        /// (out-parameters are only meaningful on success) and throws the call's exception.</summary>
        internal static T Take<T>(uint rc, IntPtr error, T handle) where T : CardbridgeSafeHandle
        {
            if (rc != 0)
            {
                if (handle != null)
                {
                    handle.SetHandleAsInvalid();
                }
                throw CardbridgeException.FromOwnedError(error, (ResultCode)rc);
            }
            if (handle == null || handle.IsInvalid)
            {
                throw new CardbridgeInternalException(ResultCode.Internal,
                    CardbridgeException.NameOf(ResultCode.Internal), "the native call succeeded without an object");
            }
            return handle;
        }

        /// <summary>The current Unix time in milliseconds, or <paramref name="nowUnixMs"/> when given.</summary>
        internal static long Now(long? nowUnixMs)
        {
            return nowUnixMs ?? DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        }

        /// <summary>The current Unix time in seconds, or <paramref name="nowUnixSeconds"/> when given
        /// (WeChat Pay timestamps are whole seconds).</summary>
        internal static long NowSeconds(long? nowUnixSeconds)
        {
            return nowUnixSeconds ?? DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        }

        /// <summary>A size_t count as a long (saturating, which only matters on exotic platforms).</summary>
        internal static long ToLong(UIntPtr n)
        {
            var v = n.ToUInt64();
            return v > long.MaxValue ? long.MaxValue : (long)v;
        }

        /// <summary>One native accessor of header number <c>index</c> (a response's or a prepared request's).</summary>
        internal delegate uint HeaderAt(UIntPtr index, out NativeHeader header, out IntPtr error);

        /// <summary>Decodes <paramref name="count"/> native header views through <paramref name="at"/>; the
        /// views point into the native object, so this runs while it is alive.</summary>
        internal static unsafe ReadOnlyCollection<KeyValuePair<string, string>> Headers(UIntPtr count, HeaderAt at)
        {
            var n = ToLong(count);
            var headers = new List<KeyValuePair<string, string>>();
            for (long i = 0; i < n; i++)
            {
                NativeHeader h;
                IntPtr error;
                CardbridgeException.Check(at((UIntPtr)(ulong)i, out h, out error), error);
                headers.Add(new KeyValuePair<string, string>(Utf8.Decode(h.Name, h.NameLen), Utf8.Decode(h.Value, h.ValueLen)));
            }
            return new ReadOnlyCollection<KeyValuePair<string, string>>(headers);
        }
    }
}
