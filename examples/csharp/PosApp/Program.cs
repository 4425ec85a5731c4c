// A point-of-sale console app issuing an Alipay+ membership card with CardBridge.
//
// What a real POS does, end to end, with test stand-ins for the outside world:
//   1. the Alipay+ platform is the loopback emulator (a real deployment sets base_url to Alipay+);
//   2. the integration is configured from JSON with a durable SQLite store;
//   3. a user's card registration (notifyCardRegistration) arrives, signed by the platform: here it
//      is made by the test platform driver instead of arriving at the POS's HTTP endpoint;
//   4. the POS approves it, sends back the signed answer and issues the card (issueCard);
//   5. it prints the card number.
//
// Usage: PosApp.exe [keys directory] (default: tests/fixtures/keys of the repository)
using System;
using System.Globalization;
using System.IO;
using System.Runtime.Serialization;
using System.Runtime.Serialization.Json;
using System.Text;
using CardBridge;

namespace PosApp
{
    /// <summary>The integration's configuration (members as cardbridge.h documents them).</summary>
    [DataContract]
    internal sealed class AlipayPlusConfig
    {
        [DataMember(Name = "client_id")] public string ClientId;
        [DataMember(Name = "merchant_private_key")] public string MerchantPrivateKey;
        [DataMember(Name = "platform_public_key")] public string PlatformPublicKey;
        [DataMember(Name = "base_url")] public string BaseUrl;
    }

    /// <summary>The members of a registration the POS looks at.</summary>
    [DataContract]
    internal sealed class Registration
    {
        [DataMember(Name = "requestId")] public string RequestId;
        [DataMember(Name = "customerId")] public string CustomerId;
    }

    /// <summary>The members of the issueCard answer the POS keeps.</summary>
    [DataContract]
    internal sealed class IssueCardResponse
    {
        [DataMember(Name = "cardNo")] public string CardNo;
    }

    internal static class Program
    {
        private const string ClientId = "2022POS_DEMO_CLIENT";

        private static int Main(string[] args)
        {
            var keys = args.Length > 0 ? args[0] : FindKeys();
            if (keys == null || !File.Exists(Path.Combine(keys, "test_merchant_private.pem")))
            {
                Console.Error.WriteLine("usage: PosApp.exe <keys directory holding test_*.pem>");
                return 2;
            }
            var dbPath = Path.Combine(Path.GetTempPath(), "posapp-" + Guid.NewGuid().ToString("N") + ".db");
            try
            {
                Run(keys, dbPath);
                return 0;
            }
            catch (CardbridgeException e)
            {
                Console.Error.WriteLine("cardbridge error {0} (field {1}, limit {2}): {3}", e.ResultName, e.Field, e.Limit, e.Message);
                return 1;
            }
            finally
            {
                foreach (var suffix in new[] { "", "-wal", "-shm" })
                {
                    File.Delete(dbPath + suffix);
                }
            }
        }

        private static void Run(string keys, string dbPath)
        {
            Func<string, string> key = name => File.ReadAllText(Path.Combine(keys, name));
            Console.WriteLine("CardBridge native library {0}", CardBridgeLibrary.Version);

            using (var platform = Emulator.Start(key("test_platform_private.pem"), key("test_merchant_public.pem"), ClientId))
            using (var store = Store.OpenSqlite(dbPath))
            using (var alipay = new AlipayPlus(ToJson(new AlipayPlusConfig
            {
                ClientId = ClientId,
                MerchantPrivateKey = key("test_merchant_private.pem"),
                PlatformPublicKey = key("test_platform_public.pem"),
                BaseUrl = platform.BaseUrl,
            }), store))
            using (var driver = new PlatformDriver(key("test_platform_private.pem"), ClientId))
            {
                Console.WriteLine("Alipay+ platform (emulator) at {0}; store {1}", platform.BaseUrl, dbPath);

                // A registration arrives at POST /v2/pds/memberships/notifyCardRegistration.
                var requestId = "POS-" + DateTime.UtcNow.ToString("yyyyMMddHHmmssfff", CultureInfo.InvariantCulture);
                using (var incoming = driver.Request("/v2/pds/memberships/notifyCardRegistration",
                    Emulator.SampleRegistration(requestId),
                    DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'+00:00'", CultureInfo.InvariantCulture)))
                using (var began = alipay.Begin(incoming.Method, incoming.Target, incoming.Headers, incoming.Body))
                {
                    if (!began.NeedsDecision)
                    {
                        // Bad signature, invalid body, duplicate: the library already wrote the answer.
                        Console.WriteLine("answered by the library: {0}", began.Response.BodyText);
                        return;
                    }
                    var registration = FromJson<Registration>(began.Call.RequestJson);
                    Console.WriteLine("registration {0} for customer {1}", registration.RequestId, registration.CustomerId);

                    // The POS creates its member record, then prepares the card from the registration.
                    var issueRequest = AlipayPlus.BuildIssueCard(began.Call.RequestJson, "POS-MEMBER-0001",
                        DateTimeOffset.Now.ToString("yyyy-MM-dd'T'HH:mm:sszzz", CultureInfo.InvariantCulture),
                        "[{\"fieldCode\":\"POINT\",\"fieldValue\":\"0\"},{\"fieldCode\":\"LEVEL\",\"fieldValue\":\"SILVER\"}]");

                    using (var answer = alipay.Finish(began.Call, "{}"))
                    {
                        Console.WriteLine("answered the platform: HTTP {0} {1}", answer.Status, answer.BodyText);
                    }

                    var issued = FromJson<IssueCardResponse>(alipay.IssueCard(issueRequest));
                    Console.WriteLine("Card number: {0}", issued.CardNo);
                }
            }
        }

        private static string ToJson<T>(T value)
        {
            using (var stream = new MemoryStream())
            {
                new DataContractJsonSerializer(typeof(T)).WriteObject(stream, value);
                return Encoding.UTF8.GetString(stream.ToArray());
            }
        }

        private static T FromJson<T>(string json)
        {
            using (var stream = new MemoryStream(Encoding.UTF8.GetBytes(json)))
            {
                return (T)new DataContractJsonSerializer(typeof(T)).ReadObject(stream);
            }
        }

        /// <summary>tests/fixtures/keys of the repository, searched upwards from the current directory.</summary>
        private static string FindKeys()
        {
            for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir != null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "tests", "fixtures", "keys");
                if (Directory.Exists(candidate))
                {
                    return candidate;
                }
            }
            return null;
        }
    }
}
