// The WeChat Pay brand member-card family through the public API against the loopback WeChat emulator:
// templates, member import / list / invalidate, feeds, the points-for-coupon answer, membership activities,
// a lost answer per kind of reconcile, and validation before sending.
using System;
using CardBridge.Testing;

namespace CardBridge.Tests
{
    public sealed class WechatBrandTests : IDisposable
    {
        private const string Base = "/v3/brand/partner/card-member";
        private readonly WechatFixture fx = new WechatFixture();

        public void Dispose()
        {
            fx.Dispose();
        }

        private static string Template(string outRequestNo)
        {
            return "{\"out_request_no\":" + Json.Quote(outRequestNo) + ",\"brand_id\":\"1004\",\"appid\":\"wxea9c30890f48d5ae\"," +
                "\"card_type\":\"NORMAL\",\"card_title\":\"Gold\",\"card_color\":\"#FFFF00\"," +
                "\"card_picture_url\":\"https://wxpaylogo.qpic.cn/x/0\",\"code_mode\":\"SYSTEM_ALLOCATE\"," +
                "\"code_type\":\"QR_CODE\",\"benefits\":\"discounts\",\"notify_url\":\"https://merchant.example/cb\"," +
                "\"valid_date_information\":{\"type\":\"PERMANENT\"}}";
        }

        private static object Body(string answer)
        {
            return MiniJson.Get(MiniJson.Parse(answer), "body");
        }

        [Test]
        public void TheBrandLifecycle()
        {
            var wp = fx.WechatPay;
            var created = Body(wp.CreateCardTemplate(Template("T-1")));
            var cardId = MiniJson.Str(created, "card_id");
            Assert.Equal("https://merchant.example/cb", MiniJson.Str(created, "notify_url"), "notify_url");
            var ids = "\"brand_id\":\"1004\",\"card_id\":" + Json.Quote(cardId);
            Assert.Contains("\"total_count\":1", wp.ListCardTemplates("{\"brand_id\":\"1004\",\"limit\":20}"), "one template");
            Assert.Equal("Platinum", MiniJson.Str(Body(wp.UpdateCardTemplate("{" + ids + ",\"card_title\":\"Platinum\"}")), "card_title"), "updated");
            Assert.Equal("Platinum", MiniJson.Str(Body(wp.GetCardTemplate("{" + ids + "}")), "card_title"), "read back");

            var member = "{" + ids + ",\"openid\":" + Json.Quote(WechatFixture.Openid) + ",\"user_card_code\":\"IMP-1\"";
            var imported = Body(wp.ImportUserCard(member + ",\"phone_number\":" + Json.Quote(WechatFixture.Phone) +
                ",\"date_information\":{\"type\":\"PERMANENT\"},\"pickup_time\":\"2024-05-20T13:29:35+08:00\"}"));
            Assert.Equal(WechatFixture.Phone, MiniJson.Str(imported, "phone_number"), "phone decrypted for the host");
            Assert.Equal("EFFECTIVE", MiniJson.Str(fx.Emulator.UserCard("IMP-1"), "user_card_state"), "the emulator holds the open card");
            Assert.Contains("\"total_count\":1", wp.ListUserCards("{\"brand_id\":\"1004\",\"openid\":" + Json.Quote(WechatFixture.Openid) + "}"), "listed");

            Assert.Equal("hello", MiniJson.Str(Body(wp.CreateUserFeed(member + ",\"out_request_no\":\"F-1\",\"cell\":\"hello\"}")), "cell"), "feed");
            var exchange = wp.ConfirmExchangeCoupon(member + ",\"record_id\":\"REC-1\",\"exchange_coupon_template_id\":\"0Flpo7FqTQ\"," +
                "\"state\":\"POINT_EXCHANGE_COUPON_SUCCESS\",\"coupon_code\":\"C-1\"}");
            Assert.Contains("POINT_EXCHANGE_COUPON_SUCCESS", exchange, "exchange confirmed");

            var activity = Body(wp.CreateMembershipActivity("{\"out_request_no\":\"A-1\"," + ids +
                ",\"activity_channel\":\"MECHANT_APP_COMPONENT\",\"title\":\"t\",\"sub_title\":\"s\"," +
                "\"begin_time\":\"2030-01-20T13:29:35+08:00\",\"end_time\":\"2030-01-29T13:29:35+08:00\",\"apply_total\":10," +
                "\"product_coupon_stock_list\":[{\"product_coupon_id\":\"7011\",\"stock_id\":\"9806\"}]}"));
            var act = "\"brand_id\":\"1004\",\"activity_id\":" + Json.Quote(MiniJson.Str(activity, "activity_id"));
            Assert.Contains("\"total_count\":1", wp.ListMembershipActivities("{\"brand_id\":\"1004\"}"), "one activity");
            wp.UpdateMembershipActivity("{" + act + ",\"title\":\"t2\",\"sub_title\":\"s2\"," +
                "\"begin_time\":\"2030-02-01T00:00:00+08:00\",\"end_time\":\"2030-02-02T00:00:00+08:00\"}");
            Assert.Equal("t2", MiniJson.Str(Body(wp.GetMembershipActivity("{" + act + "}")), "title"), "activity updated");
            Assert.Equal("MEMBERSHIP_ACTIVITY_TERMINATED",
                MiniJson.Str(Body(wp.TerminateMembershipActivity("{" + act + "}")), "activity_state"), "terminated");

            var who = "{" + ids + ",\"openid\":" + Json.Quote(WechatFixture.Openid) + "}";
            Assert.True(MiniJson.Str(Body(wp.CreatePreAuthToken(who)), "token") != MiniJson.Str(Body(wp.CreatePreAuthToken(who)), "token"),
                "a fresh join-component token per call");
            Assert.True(MiniJson.Str(Body(wp.CreatePayViewToken(who)), "expire_time") != null, "pay-view token");

            Assert.Equal("INVALID", MiniJson.Str(Body(wp.InvalidateUserCard(member + ",\"invalid_reason\":\"left\"}")), "user_card_state"), "invalidated");
            Assert.Equal("CARD_INVALID", MiniJson.Str(Body(wp.RemoveCardTemplate("{" + ids + "}")), "state"), "template removed");
        }

        [Test]
        public void ALostAnswerIsNeverAppliedTwice()
        {
            var wp = fx.WechatPay;
            fx.Emulator.PushWechatFault("{\"fault\":\"drop\"}");
            var cardId = MiniJson.Str(Body(wp.CreateCardTemplate(Template("T-LOST"))), "card_id");
            Assert.Equal(2L, fx.Emulator.WechatHits(Base + "/cards"), "sent, answer lost, re-sent with the same out_request_no");
            Assert.Contains("\"total_count\":1", wp.ListCardTemplates("{\"brand_id\":\"1004\"}"), "one template");

            fx.Emulator.AddUserCard("U-1", cardId, WechatFixture.Openid, "1004");
            fx.Emulator.PushWechatFault("{\"fault\":\"drop\"}");
            wp.InvalidateUserCard("{\"user_card_code\":\"U-1\",\"card_id\":" + Json.Quote(cardId) +
                ",\"brand_id\":\"1004\",\"openid\":" + Json.Quote(WechatFixture.Openid) + ",\"invalid_reason\":\"left\"}");
            Assert.Equal(1L, fx.Emulator.WechatHits(Base + "/user-cards/U-1/invalidate"), "no second invalidate");
            Assert.Equal(2L, fx.Emulator.WechatHits(Base + "/user-cards/U-1"), "the invalidate, then one read-back");
        }

        [Test]
        public void BadInputIsRefusedBeforeSending()
        {
            var e = Assert.Throws<ValidationException>(
                () => fx.WechatPay.ListCardTemplates("{\"brand_id\":\"1004\",\"limit\":21}"), "limit 21");
            Assert.Equal("listCardTemplates.limit", e.Field, "field");
            Assert.Equal("20", e.Limit, "limit");
            Assert.Throws<ConfigurationException>(() => fx.WechatPay.ImportUserCardByPhone("{\"brand_id\":\"1004\"}"), "not live");
            Assert.Equal(0L, fx.Emulator.WechatHits("/"), "nothing sent");
            Assert.Equal("{\"method\":\"DELETE\",\"target\":\"" + Base + "/cards/c1?brand_id=1004\",\"body\":\"\"}",
                WechatPay.Validate("removeCardTemplate", "{\"brand_id\":\"1004\",\"card_id\":\"c1\"}",
                    "{\"card_template_removal\":\"delete\"}"), "validate");
        }
    }
}
