// Native log events for .NET hosts: CardbridgeLog.SetHandler(minLevel, Action<LogEvent>).
using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;

namespace CardBridge
{
    /// <summary>Severity of a <see cref="LogEvent"/>. The numbers are those of
    /// <c>Microsoft.Extensions.Logging.LogLevel</c>, so <c>(LogLevel)(int)e.Level</c> converts.</summary>
    public enum CardbridgeLogLevel
    {
        /// <summary>Finest detail (native TRACE).</summary>
        Trace = 0,
        /// <summary>Detail (native DEBUG).</summary>
        Debug = 1,
        /// <summary>Normal operation: an inbound answer, an outbound attempt's outcome, a certificate refresh.</summary>
        Information = 2,
        /// <summary>A retry, an outcome left pending, a lease taken over, a refused inbound call.</summary>
        Warning = 3,
        /// <summary>Something failed that needs an operator (a store error).</summary>
        Error = 4,
    }

    /// <summary>One structured event of the native library: identifiers, labels and numbers only —
    /// never bodies, keys, signatures or personal data.</summary>
    public sealed class LogEvent
    {
        internal LogEvent(CardbridgeLogLevel level, string target, string message,
            IReadOnlyDictionary<string, string> fields, string fieldsJson)
        {
            Level = level;
            Target = target;
            Message = message;
            Fields = fields;
            FieldsJson = fieldsJson;
        }

        /// <summary>Severity.</summary>
        public CardbridgeLogLevel Level { get; }

        /// <summary>Where it comes from, e.g. <c>cardbridge::outbox</c> (a logger category).</summary>
        public string Target { get; }

        /// <summary>What happened (fixed text), e.g. <c>outbound attempt</c>.</summary>
        public string Message { get; }

        /// <summary>The fields as text, in order (e.g. <c>out_id</c>, <c>attempt</c>, <c>outcome</c>,
        /// <c>http_status</c>, <c>latency_ms</c>); README "Logging" lists them.</summary>
        public IReadOnlyDictionary<string, string> Fields { get; }

        /// <summary>The same fields as one JSON object, numbers and booleans typed.</summary>
        public string FieldsJson { get; }

        /// <summary><c>message key=value …</c>, ready for a text log.</summary>
        public override string ToString()
        {
            var text = new System.Text.StringBuilder(Message);
            foreach (var f in Fields)
            {
                text.Append(' ').Append(f.Key).Append('=').Append(f.Value);
            }
            return text.ToString();
        }
    }

    /// <summary>The process-wide log hook of the native library (<c>cardbridge_set_log_callback</c>).</summary>
    /// <remarks>
    /// Events are delivered synchronously, on the thread that made the native call. An exception thrown by
    /// the handler is swallowed (logging must never break a payment flow); events caused by calls the
    /// handler makes into cardbridge are not delivered to it. Adapting to
    /// <c>Microsoft.Extensions.Logging</c>:
    /// <code>
    /// CardbridgeLog.SetHandler(CardbridgeLogLevel.Information, e =>
    ///     loggerFactory.CreateLogger(e.Target).Log((LogLevel)(int)e.Level, "{Event} {Fields}", e.Message, e.FieldsJson));
    /// </code>
    /// </remarks>
    public static class CardbridgeLog
    {
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void NativeCallback(IntPtr userData, IntPtr logEvent);

        private static readonly object Gate = new object();
        // Kept alive for as long as the native library may call it.
        private static readonly NativeCallback Trampoline = OnNativeEvent;
        private static Action<LogEvent> handler;

        /// <summary>Sends every event at <paramref name="minLevel"/> or more severe to <paramref name="handler"/>,
        /// replacing the previous handler; <c>null</c> removes it. Thread-safe, callable at any time; when it
        /// returns, the previous handler is no longer running on another thread.</summary>
        public static void SetHandler(CardbridgeLogLevel minLevel, Action<LogEvent> handler)
        {
            lock (Gate)
            {
                uint native;
                switch (minLevel)
                {
                    case CardbridgeLogLevel.Error: native = 1; break;
                    case CardbridgeLogLevel.Warning: native = 2; break;
                    case CardbridgeLogLevel.Information: native = 3; break;
                    case CardbridgeLogLevel.Debug: native = 4; break;
                    case CardbridgeLogLevel.Trace: native = 5; break;
                    default: throw new ArgumentOutOfRangeException("minLevel");
                }
                CardbridgeLog.handler = handler;
                IntPtr error;
                var rc = handler == null
                    ? NativeMethods.cardbridge_set_log_callback(native, null, IntPtr.Zero, out error)
                    : NativeMethods.cardbridge_set_log_callback(native, Trampoline, IntPtr.Zero, out error);
                CardbridgeException.Check(rc, error);
            }
        }

        private static unsafe void OnNativeEvent(IntPtr userData, IntPtr logEvent)
        {
            try
            {
                var h = handler;
                if (h == null || logEvent == IntPtr.Zero)
                {
                    return;
                }
                var e = (NativeLogEvent*)logEvent;
                var fields = new Dictionary<string, string>();
                for (ulong i = 0; i < e->FieldsLen.ToUInt64(); i++)
                {
                    var f = e->Fields + i;
                    fields[Utf8.Decode(f->Key, f->KeyLen)] = Utf8.Decode(f->Value, f->ValueLen);
                }
                CardbridgeLogLevel level;
                switch (e->Level)
                {
                    case 1: level = CardbridgeLogLevel.Error; break;
                    case 2: level = CardbridgeLogLevel.Warning; break;
                    case 3: level = CardbridgeLogLevel.Information; break;
                    case 4: level = CardbridgeLogLevel.Debug; break;
                    default: level = CardbridgeLogLevel.Trace; break;
                }
                h(new LogEvent(level, Utf8.Decode(e->Target, e->TargetLen), Utf8.Decode(e->Message, e->MessageLen),
                    fields, Utf8.Decode(e->FieldsJson, e->FieldsJsonLen)));
            }
            catch (Exception)
            {
                // An exception must not cross into native code (it would end the process).
            }
        }
    }

    /// <summary>cardbridge_log_field: borrowed for the duration of the callback.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct NativeLogField
    {
        public byte* Key;
        public UIntPtr KeyLen;
        public byte* Value;
        public UIntPtr ValueLen;
    }

    /// <summary>cardbridge_log_event: borrowed for the duration of the callback.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct NativeLogEvent
    {
        public uint Level;
        public byte* Target;
        public UIntPtr TargetLen;
        public byte* Message;
        public UIntPtr MessageLen;
        public NativeLogField* Fields;
        public UIntPtr FieldsLen;
        public byte* FieldsJson;
        public UIntPtr FieldsJsonLen;
    }
}
