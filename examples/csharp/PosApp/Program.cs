// A point-of-sale console app opening membership cards with CardBridge: an Alipay+ card, then a
// WeChat Pay member card.
//
// What a real POS does, end to end, with test stand-ins for the outside world:
//   1. the Alipay+ platform is the `cardbridge emulator` binary, started and driven by the test
//      support CardBridge.Testing.Emulator (a real deployment sets base_url to Alipay+);
//   2. the integration is configured from JSON with a durable SQLite store;
//   3. a user's card registration (notifyCardRegistration) arrives, signed by the platform: here it
//      is minted by the emulator instead of arriving at the POS's HTTP endpoint;
//   4. the POS approves it, sends back the signed answer and issues the card (issueCard);
//   5. it prints the card number.
// WeChat Pay, over the same store:
//   6. WeChat Pay is a second emulator, which holds the card the user just picked up;
//   7. the USER_CARD.CREATE callback arrives at the POS's notify_url (minted by the emulator): the
//      library verifies and decrypts it, the POS reads the event and acknowledges it;
//   8. the POS opens the member account and confirms the card, which becomes EFFECTIVE.
//
// Usage: PosApp.exe [keys directory] (default: tests/fixtures/keys of the repository); the `cardbridge`
// binary next to PosApp.exe, on PATH, or in CARDBRIDGE_BIN. Build: bindings/csharp/tests/run.sh compiles
// it with bindings/csharp/testing/*.cs (the test support is not part of the CardBridge package).
using System;
using System.Globalization;
using System.IO;
using System.Runtime.Serialization;
using System.Runtime.Serialization.Json;
using System.Text;
using CardBridge;
using CardBridge.Testing;

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

    /// <summary>The WeChat Pay integration's configuration (members as cardbridge.h documents them).</summary>
    [DataContract]
    internal sealed class WechatPayConfig
    {
        [DataMember(Name = "mchid")] public string Mchid;
        [DataMember(Name = "merchant_serial_no")] public string MerchantSerialNo;
        [DataMember(Name = "merchant_private_key")] public string MerchantPrivateKey;
        [DataMember(Name = "api_v3_key")] public string ApiV3Key;
        [DataMember(Name = "wechatpay_public_key_id")] public string WechatPayPublicKeyId;
        [DataMember(Name = "wechatpay_public_key")] public string WechatPayPublicKey;
        [DataMember(Name = "base_url")] public string BaseUrl;
    }

    /// <summary>The WeChat emulator's configuration: it plays WeChat Pay for this merchant.</summary>
    [DataContract]
    internal sealed class WechatEmulatorConfig
    {
        [DataMember(Name = "wechatpay_private_key")] public string WechatPayPrivateKey;
        [DataMember(Name = "public_key_id")] public string PublicKeyId;
        [DataMember(Name = "merchant_public_key")] public string MerchantPublicKey;
        [DataMember(Name = "mchid")] public string Mchid;
        [DataMember(Name = "merchant_serial_no")] public string MerchantSerialNo;
        [DataMember(Name = "api_v3_key")] public string ApiV3Key;
    }

    /// <summary>The members of a card event the POS looks at.</summary>
    [DataContract]
    internal sealed class CardEvent
    {
        [DataMember(Name = "resource")] public UserCard Resource;
    }

    /// <summary>A user card as it appears in events, confirm input and answers (the members the POS uses).</summary>
    [DataContract]
    internal sealed class UserCard
    {
        [DataMember(Name = "user_card_code", EmitDefaultValue = false)] public string UserCardCode;
        [DataMember(Name = "card_id", EmitDefaultValue = false)] public string CardId;
        [DataMember(Name = "brand_id", EmitDefaultValue = false)] public string BrandId;
        [DataMember(Name = "openid", EmitDefaultValue = false)] public string Openid;
        [DataMember(Name = "phone_number", EmitDefaultValue = false)] public string PhoneNumber;
        [DataMember(Name = "user_card_confirm_state", EmitDefaultValue = false)] public string ConfirmState;
        [DataMember(Name = "user_card_state", EmitDefaultValue = false)] public string State;
        [DataMember(Name = "invalid_reason", EmitDefaultValue = false)] public string InvalidReason;
    }

    /// <summary>The answer of <see cref="WechatPay.Confirm"/>.</summary>
    [DataContract]
    internal sealed class ConfirmAnswer
    {
        [DataMember(Name = "status")] public int Status;
        [DataMember(Name = "body")] public UserCard Body;
    }

    internal static class Program
    {
        private const string ClientId = "2022POS_DEMO_CLIENT";
        // Test identities of the WeChat Pay merchant (a real POS reads them from its configuration).
        private const string Mchid = "1900000001";
        private const string MerchantSerialNo = "5F1C72E2A8931B72A2E13AF8DEE92471EB397115";
        private const string ApiV3Key = "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb";
        private const string WechatPayPublicKeyId = "PUB_KEY_ID_0114232134912410000000000000";

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
            // The library's events (identifiers, labels, numbers; never personal data) into the app's log.
            // With Microsoft.Extensions.Logging: logger.Log((LogLevel)(int)e.Level, "{Event}", e.ToString()).
            CardbridgeLog.SetHandler(CardbridgeLogLevel.Information,
                e => Console.WriteLine("  [log] {0} {1} {2}", e.Level, e.Target, e));

            using (var platform = Emulator.Start(key("test_platform_private.pem"), key("test_merchant_public.pem"), ClientId))
            using (var store = Store.OpenSqlite(dbPath))
            using (var alipay = new AlipayPlus(ToJson(new AlipayPlusConfig
            {
                ClientId = ClientId,
                MerchantPrivateKey = key("test_merchant_private.pem"),
                PlatformPublicKey = key("test_platform_public.pem"),
                BaseUrl = platform.BaseUrl,
            }), store))
            {
                Console.WriteLine("Alipay+ platform (emulator) at {0}; store {1}", platform.BaseUrl, dbPath);

                // A registration arrives at POST /v2/pds/memberships/notifyCardRegistration.
                var requestId = "POS-" + DateTime.UtcNow.ToString("yyyyMMddHHmmssfff", CultureInfo.InvariantCulture);
                var incoming = platform.Request("/v2/pds/memberships/notifyCardRegistration",
                    Emulator.SampleRegistration(requestId));
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
                Console.WriteLine("metrics: {0}", alipay.Metrics());

                OpenWechatCard(key, store);
            }
        }

        /// <summary>Steps 6-8: a WeChat Pay member card, from the card-opening callback to the confirm.</summary>
        private static void OpenWechatCard(Func<string, string> key, Store store)
        {
            // The test platform pair plays WeChat Pay's key pair.
            using (var wechat = Emulator.Start(ToJson(new WechatEmulatorConfig
            {
                WechatPayPrivateKey = key("test_platform_private.pem"),
                PublicKeyId = WechatPayPublicKeyId,
                MerchantPublicKey = key("test_merchant_public.pem"),
                Mchid = Mchid,
                MerchantSerialNo = MerchantSerialNo,
                ApiV3Key = ApiV3Key,
            })))
            using (var wechatPay = new WechatPay(ToJson(new WechatPayConfig
            {
                Mchid = Mchid,
                MerchantSerialNo = MerchantSerialNo,
                MerchantPrivateKey = key("test_merchant_private.pem"),
                ApiV3Key = ApiV3Key,
                WechatPayPublicKeyId = WechatPayPublicKeyId,
                WechatPayPublicKey = key("test_platform_public.pem"),
                BaseUrl = wechat.BaseUrl,
            }), store))
            {
                Console.WriteLine("WeChat Pay (emulator) at {0}", wechat.BaseUrl);
                const string cardId = "pbLatjvWOibDc5-TBnbUk1pD12o0";
                const string openid = "obLatjnx9gnqzS4myYGmLZ7LgLBA";
                var code = DateTime.UtcNow.ToString("yyMMddHHmmss", CultureInfo.InvariantCulture);
                // The user picked up the card in WeChat; WeChat holds it and notifies the POS.
                wechat.AddUserCard(code, cardId, openid, "1004");

                // POST <notify_url> arrives with the sealed USER_CARD.CREATE event.
                UserCard card;
                var incoming = wechat.Callback("BRAND_MEMBER_CARD_SP.USER_CARD.CREATE", "user_card",
                    Emulator.SampleUserCardCreate(code, cardId, openid));
                using (var began = wechatPay.CallbackBegin(incoming.Method, incoming.Target, incoming.Headers, incoming.Body))
                {
                    if (!began.NeedsHandling)
                    {
                        // Forged, stale, duplicate: the library already wrote the answer.
                        Console.WriteLine("answered by the library: HTTP {0}", began.Response.Status);
                        return;
                    }
                    // The event holds personal data in cleartext (the phone number): use it, never log it.
                    card = FromJson<CardEvent>(began.Event.Json).Resource;
                    Console.WriteLine("event {0} for user card {1}", began.Event.Kind, card.UserCardCode);
                    using (var answer = wechatPay.CallbackFinish(began.Event, true))
                    {
                        Console.WriteLine("answered WeChat Pay: HTTP {0}", answer.Status);
                    }
                }

                // The POS opens the member account, then tells WeChat (sensitive fields in cleartext;
                // the library encrypts them).
                var confirmed = FromJson<ConfirmAnswer>(wechatPay.Confirm(ToJson(new UserCard
                {
                    UserCardCode = card.UserCardCode,
                    CardId = card.CardId,
                    BrandId = card.BrandId,
                    Openid = card.Openid,
                    PhoneNumber = card.PhoneNumber,
                    ConfirmState = "CREATE_CARD_SUCCESS",
                })));
                Console.WriteLine("WeChat card {0} {1}", confirmed.Body.UserCardCode, confirmed.Body.State);

                // Later the member leaves: the card is invalidated (irreversible, a reason is required;
                // recorded in the outbox, so a lost answer is read back instead of being sent twice).
                var left = FromJson<ConfirmAnswer>(wechatPay.InvalidateUserCard(ToJson(new UserCard
                {
                    UserCardCode = card.UserCardCode,
                    CardId = card.CardId,
                    BrandId = card.BrandId,
                    Openid = card.Openid,
                    InvalidReason = "member left",
                })));
                Console.WriteLine("WeChat card {0} {1} (member left)", left.Body.UserCardCode, left.Body.State);
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
