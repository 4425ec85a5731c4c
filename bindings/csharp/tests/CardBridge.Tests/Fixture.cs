// Shared setup: test keys, an emulator (the `cardbridge` binary, which also mints the platform's signed
// calls), an integration configured against it.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Text;
using CardBridge.Testing;

namespace CardBridge.Tests
{
    public static class Keys
    {
        public static string Read(string file)
        {
            return File.ReadAllText(Path.Combine(Runner.Root, "tests", "fixtures", "keys", file));
        }

        public static string PlatformPrivate { get { return Read("test_platform_private.pem"); } }
        public static string PlatformPublic { get { return Read("test_platform_public.pem"); } }
        public static string MerchantPrivate { get { return Read("test_merchant_private.pem"); } }
        public static string MerchantPublic { get { return Read("test_merchant_public.pem"); } }
    }

    public static class Json
    {
        /// <summary>A JSON string literal.</summary>
        public static string Quote(string s)
        {
            return MiniJson.Quote(s);
        }
    }

    /// <summary>
    /// An emulator (which also mints the platform's signed calls), a store and an integration pointed at
    /// the emulator; disposed after each test.
    /// </summary>
    public sealed class Fixture : IDisposable
    {
        public const string ClientId = "2022TEST_CLIENT";
        public const string NotifyTarget = "/v2/pds/memberships/notifyCardRegistration";
        public const string RegisterDate = "2026-11-23T18:00:00+08:00";
        public const string CardFields =
            "[{\"fieldCode\":\"POINT\",\"fieldValue\":\"120\"},{\"fieldCode\":\"BALANCE\",\"fieldValue\":{\"value\":100,\"currency\":\"SGD\"}}]";

        public readonly Emulator Emulator;
        public readonly AlipayPlus AlipayPlus;
        private readonly List<string> files = new List<string>();

        /// <param name="sqlite">Use an SQLite store in a temporary file instead of memory.</param>
        /// <param name="extraConfig">Members appended to the integration's configuration (",\"k\":v").</param>
        public Fixture(bool sqlite = false, string extraConfig = null)
        {
            Emulator = Emulator.Start(Keys.PlatformPrivate, Keys.MerchantPublic, ClientId);
            using (var store = sqlite ? Store.OpenSqlite(TempFile()) : Store.InMemory())
            {
                // The integration keeps its own reference: the store is disposed right away on purpose.
                AlipayPlus = new AlipayPlus(Config(Emulator.BaseUrl, extraConfig), store);
            }
        }

        /// <summary>The integration's configuration with fast retries and generous timeouts.</summary>
        public static string Config(string baseUrl, string extraConfig = null)
        {
            return "{\"client_id\":" + Json.Quote(ClientId) +
                ",\"merchant_private_key\":" + Json.Quote(Keys.MerchantPrivate) +
                ",\"platform_public_key\":" + Json.Quote(Keys.PlatformPublic) +
                (baseUrl == null ? "" : ",\"base_url\":" + Json.Quote(baseUrl)) +
                (extraConfig ?? ",\"retry\":{\"max_attempts\":4,\"base_delay_ms\":5,\"max_delay_ms\":20,\"deadline_ms\":60000}") +
                ",\"connect_timeout_ms\":10000,\"read_timeout_ms\":30000}";
        }

        /// <summary>The current time as an Alipay+ Request-Time.</summary>
        public static string RequestTime()
        {
            return DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'+00:00'", CultureInfo.InvariantCulture);
        }

        /// <summary>A signed (or spoiled) notifyCardRegistration from the platform.</summary>
        public HttpRequest Registration(string requestId, Tamper tamper = Tamper.None)
        {
            return Emulator.Request(NotifyTarget, Emulator.SampleRegistration(requestId), RequestTime(), tamper);
        }

        /// <summary>A path for a temporary SQLite file, removed (with its WAL files) on dispose.</summary>
        public string TempFile()
        {
            var path = Path.Combine(Path.GetTempPath(), "cardbridge-cs-" + Guid.NewGuid().ToString("N") + ".db");
            files.Add(path);
            return path;
        }

        public void Dispose()
        {
            AlipayPlus.Dispose();
            Emulator.Dispose();
            foreach (var f in files)
            {
                foreach (var suffix in new[] { "", "-wal", "-shm" })
                {
                    File.Delete(f + suffix);
                }
            }
        }
    }
}
