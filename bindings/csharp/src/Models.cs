using System;
using System.Collections.Generic;
using System.Text;

namespace CardBridge
{
    /// <summary>The known <c>user_card_confirm_state</c> values of a confirm.</summary>
    public static class ConfirmStates
    {
        /// <summary>The merchant opened the member account.</summary>
        public const string CreateCardSuccess = "CREATE_CARD_SUCCESS";
        /// <summary>The merchant could not open it.</summary>
        public const string CreateCardFail = "CREATE_CARD_FAIL";
    }

    /// <summary>The <c>user_card_state</c> values this version knows; others are kept as received.</summary>
    public static class UserCardStates
    {
        /// <summary>Callbacks: not yet effective.</summary>
        public const string NotEffective = "NOT_EFFECTIVE";
        /// <summary>API: waiting for its confirm.</summary>
        public const string Unactivated = "UNACTIVATED";
        /// <summary>Open.</summary>
        public const string Effective = "EFFECTIVE";
        /// <summary>Past its validity.</summary>
        public const string Expired = "EXPIRED";
        /// <summary>Callbacks: unavailable.</summary>
        public const string Unavailable = "UNAVAILABLE";
        /// <summary>Invalidated.</summary>
        public const string Invalid = "INVALID";
        /// <summary>Callbacks: deleted by the user.</summary>
        public const string Delete = "DELETE";
    }

    /// <summary>
    /// A typed WeChat Pay JSON object: named members as properties, every other member kept in
    /// <see cref="Extra"/> as raw JSON and written back, so <c>FromJson(json).ToJson()</c> loses nothing.
    /// Enum-like members are strings, so values this version does not know are kept too (the library's
    /// validation refuses unknown ones in inputs, naming the field). Sensitive members (the phone number,
    /// user information) are cleartext here: the library encrypts them on the way out; do not log them.
    /// </summary>
    public abstract class WechatModel
    {
        private readonly List<KeyValuePair<string, string>> extra = new List<KeyValuePair<string, string>>();

        /// <summary>Members this type does not name, in order: name and raw JSON value (e.g. <c>"\"GOLD\""</c>, <c>{"a":1}</c>).</summary>
        public IList<KeyValuePair<string, string>> Extra
        {
            get { return extra; }
        }

        /// <summary>Reads one member; false when this type does not name it (it goes to <see cref="Extra"/>).</summary>
        internal abstract bool Read(string name, string raw);

        /// <summary>Writes the named members (not <see cref="Extra"/>).</summary>
        internal abstract void Write(StringBuilder sb);

        /// <summary>This object as compact JSON: the named members, then <see cref="Extra"/>.</summary>
        public string ToJson()
        {
            var sb = new StringBuilder("{");
            Write(sb);
            foreach (var m in extra)
            {
                JsonText.RawMember(sb, m.Key, m.Value);
            }
            return sb.Append('}').ToString();
        }

        /// <summary>Fills <paramref name="model"/> from a JSON object.</summary>
        /// <exception cref="FormatException">Not a JSON object, or a named member has the wrong type
        /// (the message names the member, never its value).</exception>
        internal static T Parse<T>(T model, string json) where T : WechatModel
        {
            if (json == null)
            {
                throw new ArgumentNullException("json");
            }
            foreach (var m in JsonText.TopLevelRaw(json))
            {
                if (!model.Read(m.Key, m.Value))
                {
                    model.extra.Add(m);
                }
            }
            return model;
        }

        /// <summary>A string member's value; FormatException naming the member otherwise.</summary>
        internal static string Text(string name, string raw)
        {
            var s = JsonText.DecodeString(raw);
            if (s == null && raw != "null")
            {
                throw new FormatException("member " + name + " must be a JSON string");
            }
            return s;
        }

        /// <summary>An integer member's value; FormatException naming the member otherwise.</summary>
        internal static long Integer(string name, string raw)
        {
            long n;
            if (!long.TryParse(raw, System.Globalization.NumberStyles.AllowLeadingSign,
                    System.Globalization.CultureInfo.InvariantCulture, out n))
            {
                throw new FormatException("member " + name + " must be a JSON integer");
            }
            return n;
        }

        /// <summary>A raw object member (kept as JSON text); FormatException unless an object or null.</summary>
        internal static string Object(string name, string raw)
        {
            if (raw == "null")
            {
                return null;
            }
            if (!raw.StartsWith("{", StringComparison.Ordinal))
            {
                throw new FormatException("member " + name + " must be a JSON object");
            }
            return raw;
        }
    }

    /// <summary>The input of <see cref="WechatPay.Confirm(ConfirmInput, TimeSpan?)"/>: which user card, the outcome,
    /// and the card members to set (<see cref="PhoneNumber"/> and <see cref="UserInformationJson"/> in cleartext).</summary>
    public sealed class ConfirmInput : WechatModel
    {
        /// <summary><c>user_card_code</c>.</summary>
        public string UserCardCode { get; set; }
        /// <summary><c>card_id</c> (max 32).</summary>
        public string CardId { get; set; }
        /// <summary><c>brand_id</c> (max 32).</summary>
        public string BrandId { get; set; }
        /// <summary><c>openid</c> (max 128).</summary>
        public string Openid { get; set; }
        /// <summary><c>user_card_confirm_state</c>, one of <see cref="ConfirmStates"/>.</summary>
        public string UserCardConfirmState { get; set; }
        /// <summary><c>phone_number</c>, cleartext (null: absent).</summary>
        public string PhoneNumber { get; set; }
        /// <summary><c>user_information</c> as a JSON object (<c>common_field_list</c>, <c>custom_field_list</c>), values in cleartext (null: absent).</summary>
        public string UserInformationJson { get; set; }

        /// <summary>Reads a confirm input from JSON; unknown members go to <see cref="WechatModel.Extra"/>.</summary>
        /// <exception cref="FormatException">Not a JSON object, or a named member has the wrong type.</exception>
        public static ConfirmInput FromJson(string json)
        {
            return Parse(new ConfirmInput(), json);
        }

        internal override bool Read(string name, string raw)
        {
            switch (name)
            {
                case "user_card_code": UserCardCode = Text(name, raw); return true;
                case "card_id": CardId = Text(name, raw); return true;
                case "brand_id": BrandId = Text(name, raw); return true;
                case "openid": Openid = Text(name, raw); return true;
                case "user_card_confirm_state": UserCardConfirmState = Text(name, raw); return true;
                case "phone_number": PhoneNumber = Text(name, raw); return true;
                case "user_information": UserInformationJson = Object(name, raw); return true;
                default: return false;
            }
        }

        internal override void Write(StringBuilder sb)
        {
            JsonText.StringMember(sb, "user_card_code", UserCardCode);
            JsonText.StringMember(sb, "card_id", CardId);
            JsonText.StringMember(sb, "brand_id", BrandId);
            JsonText.StringMember(sb, "openid", Openid);
            JsonText.StringMember(sb, "user_card_confirm_state", UserCardConfirmState);
            JsonText.StringMember(sb, "phone_number", PhoneNumber);
            if (UserInformationJson != null)
            {
                JsonText.RawMember(sb, "user_information", UserInformationJson);
            }
        }

        /// <summary>Identifies the card and its state; never the phone number or user information.</summary>
        public override string ToString()
        {
            return "ConfirmInput(" + UserCardCode + ", " + UserCardConfirmState + ")";
        }
    }

    /// <summary>The input of <see cref="WechatPay.SyncUserPoints(PointsSyncInput)"/>.</summary>
    public sealed class PointsSyncInput : WechatModel
    {
        /// <summary><c>out_request_no</c> (max 32).</summary>
        public string OutRequestNo { get; set; }
        /// <summary><c>brand_id</c>.</summary>
        public string BrandId { get; set; }
        /// <summary><c>card_id</c>.</summary>
        public string CardId { get; set; }
        /// <summary><c>openid</c>.</summary>
        public string Openid { get; set; }
        /// <summary><c>user_card_code</c>.</summary>
        public string UserCardCode { get; set; }
        /// <summary><c>point_balance</c> (non-negative).</summary>
        public long PointBalance { get; set; }

        /// <summary>Reads a points-sync input from JSON; unknown members go to <see cref="WechatModel.Extra"/>.</summary>
        /// <exception cref="FormatException">Not a JSON object, or a named member has the wrong type.</exception>
        public static PointsSyncInput FromJson(string json)
        {
            return Parse(new PointsSyncInput(), json);
        }

        internal override bool Read(string name, string raw)
        {
            switch (name)
            {
                case "out_request_no": OutRequestNo = Text(name, raw); return true;
                case "brand_id": BrandId = Text(name, raw); return true;
                case "card_id": CardId = Text(name, raw); return true;
                case "openid": Openid = Text(name, raw); return true;
                case "user_card_code": UserCardCode = Text(name, raw); return true;
                case "point_balance": PointBalance = Integer(name, raw); return true;
                default: return false;
            }
        }

        internal override void Write(StringBuilder sb)
        {
            JsonText.StringMember(sb, "out_request_no", OutRequestNo);
            JsonText.StringMember(sb, "brand_id", BrandId);
            JsonText.StringMember(sb, "card_id", CardId);
            JsonText.StringMember(sb, "openid", Openid);
            JsonText.StringMember(sb, "user_card_code", UserCardCode);
            JsonText.RawMember(sb, "point_balance", PointBalance.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    /// <summary>A user card as the answers carry it (confirm, get, invalidate, list items), sensitive
    /// members decrypted; every member it does not name is kept in <see cref="WechatModel.Extra"/>.</summary>
    public sealed class UserCard : WechatModel
    {
        /// <summary><c>user_card_code</c>.</summary>
        public string UserCardCode { get; set; }
        /// <summary><c>card_id</c>.</summary>
        public string CardId { get; set; }
        /// <summary><c>openid</c>.</summary>
        public string Openid { get; set; }
        /// <summary><c>brand_id</c>.</summary>
        public string BrandId { get; set; }
        /// <summary><c>user_card_state</c>: one of <see cref="UserCardStates"/>, or a value this version does not know.</summary>
        public string UserCardState { get; set; }
        /// <summary><c>phone_number</c>, decrypted (null: absent).</summary>
        public string PhoneNumber { get; set; }
        /// <summary><c>user_information</c> as a JSON object, values decrypted (null: absent).</summary>
        public string UserInformationJson { get; set; }

        /// <summary>Reads a user card from its JSON object.</summary>
        /// <exception cref="FormatException">Not a JSON object, or a named member has the wrong type.</exception>
        public static UserCard FromJson(string json)
        {
            return Parse(new UserCard(), json);
        }

        /// <summary>The user card in the <c>body</c> of an answer (<c>{"status","body",..}</c>, e.g. of
        /// <see cref="WechatPay.Confirm(string, TimeSpan?)"/>).</summary>
        /// <exception cref="FormatException">The answer has no object <c>body</c>.</exception>
        public static UserCard FromAnswer(string answerJson)
        {
            if (answerJson == null)
            {
                throw new ArgumentNullException("answerJson");
            }
            foreach (var m in JsonText.TopLevelRaw(answerJson))
            {
                if (m.Key == "body" && m.Value.StartsWith("{", StringComparison.Ordinal))
                {
                    return FromJson(m.Value);
                }
            }
            throw new FormatException("the answer has no user card body");
        }

        internal override bool Read(string name, string raw)
        {
            switch (name)
            {
                case "user_card_code": UserCardCode = Text(name, raw); return true;
                case "card_id": CardId = Text(name, raw); return true;
                case "openid": Openid = Text(name, raw); return true;
                case "brand_id": BrandId = Text(name, raw); return true;
                case "user_card_state": UserCardState = Text(name, raw); return true;
                case "phone_number": PhoneNumber = Text(name, raw); return true;
                case "user_information": UserInformationJson = Object(name, raw); return true;
                default: return false;
            }
        }

        internal override void Write(StringBuilder sb)
        {
            JsonText.StringMember(sb, "user_card_code", UserCardCode);
            JsonText.StringMember(sb, "card_id", CardId);
            JsonText.StringMember(sb, "openid", Openid);
            JsonText.StringMember(sb, "brand_id", BrandId);
            JsonText.StringMember(sb, "user_card_state", UserCardState);
            JsonText.StringMember(sb, "phone_number", PhoneNumber);
            if (UserInformationJson != null)
            {
                JsonText.RawMember(sb, "user_information", UserInformationJson);
            }
        }

        /// <summary>Identifies the card and its state; never the phone number or user information.</summary>
        public override string ToString()
        {
            return "UserCard(" + UserCardCode + ", " + UserCardState + ")";
        }
    }
}
