// The PostgreSQL store: two integrations ("nodes") on one database decide a registration once.
// The server is CARDBRIDGE_TEST_PG (default: user postgres on 127.0.0.1:5432); each test works in a fresh
// schema, created and dropped with psql. Without a server the tests skip loudly, unless CI=true or
// CARDBRIDGE_REQUIRE_PG=1 (set by .ci/test-all): then they fail.
using System;
using System.Diagnostics;
using CardBridge.Testing;

namespace CardBridge.Tests
{
    public class PostgresTests : IDisposable
    {
        private const string DefaultDsn = "host=127.0.0.1 port=5432 user=postgres dbname=postgres";
        private readonly Fixture fx = new Fixture();
        private string schema;

        public void Dispose()
        {
            if (schema != null)
            {
                string ignored;
                Psql("DROP SCHEMA IF EXISTS " + schema + " CASCADE", out ignored);
            }
            fx.Dispose();
        }

        private static string BaseDsn()
        {
            var dsn = Environment.GetEnvironmentVariable("CARDBRIDGE_TEST_PG");
            return string.IsNullOrWhiteSpace(dsn) ? DefaultDsn : dsn.Trim();
        }

        private static bool Required()
        {
            return Environment.GetEnvironmentVariable("CI") == "true" ||
                Environment.GetEnvironmentVariable("CARDBRIDGE_REQUIRE_PG") == "1";
        }

        private static bool Psql(string sql, out string error)
        {
            try
            {
                // Mono's Process has no ArgumentList: one command line, each argument double-quoted.
                var info = new ProcessStartInfo("psql", Quote(BaseDsn()) + " -v ON_ERROR_STOP=1 -qAtc " + Quote(sql))
                {
                    UseShellExecute = false,
                    RedirectStandardError = true,
                    RedirectStandardOutput = true,
                };
                using (var p = Process.Start(info))
                {
                    error = p.StandardError.ReadToEnd();
                    p.StandardOutput.ReadToEnd();
                    p.WaitForExit();
                    return p.ExitCode == 0;
                }
            }
            catch (Exception e)
            {
                error = "psql cannot run: " + e.Message;
                return false;
            }
        }

        private static string Quote(string arg)
        {
            return "\"" + arg.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";
        }

        /// <summary>A DSN confined to a fresh schema, or a skip (a failure in CI).</summary>
        private string FreshDsn()
        {
            var name = "cb_test_cs_" + Process.GetCurrentProcess().Id;
            string error;
            if (!Psql("DROP SCHEMA IF EXISTS " + name + " CASCADE; CREATE SCHEMA " + name, out error))
            {
                var why = "PostgreSQL is unreachable: " + error.Trim();
                if (Required())
                {
                    throw new AssertionException(why + " (CI=true / CARDBRIDGE_REQUIRE_PG=1: PostgreSQL tests must run)");
                }
                Console.Error.WriteLine("!!!!!!!! SKIPPED PostgreSQL test: " + why);
                throw new SkipException(why);
            }
            schema = name;
            var dsn = BaseDsn();
            if (dsn.StartsWith("postgres://", StringComparison.Ordinal) || dsn.StartsWith("postgresql://", StringComparison.Ordinal))
            {
                return dsn + (dsn.Contains("?") ? "&" : "?") + "options=-c%20search_path%3D" + name;
            }
            return dsn + " options='-c search_path=" + name + "'";
        }

        [Test]
        public void TwoNodesOnOneDatabaseDecideARegistrationOnce()
        {
            var dsn = FreshDsn();
            AlipayPlus nodeA, nodeB;
            using (var storeA = Store.OpenPostgres(dsn))
            using (var storeB = Store.OpenPostgres(dsn))
            {
                nodeA = new AlipayPlus(Fixture.Config(null), storeA);
                nodeB = new AlipayPlus(Fixture.Config(null), storeB);
            }
            using (nodeA)
            using (nodeB)
            {
                var request = fx.Registration("CS-PG-1");
                using (var began = nodeA.Begin(request))
                {
                    Assert.True(began.NeedsDecision, "node A's host decides");
                    using (var busy = nodeB.Begin(request))
                    {
                        Assert.True(!busy.NeedsDecision, "node B does not ask its host while A decides");
                        Assert.Contains("\"resultStatus\":\"U\"", busy.Response.BodyText, "node B answers U");
                    }
                    using (var answer = nodeA.Finish(began.Call, "{}"))
                    {
                        var dup = fx.Registration("CS-PG-1");
                        using (var replay = nodeB.Begin(dup))
                        {
                            Assert.Contains("\"resultStatus\":\"S\"", answer.BodyText, "decided");
                            Assert.True(!replay.NeedsDecision, "the duplicate is answered from the database");
                            Assert.BytesEqual(answer.Body, replay.Response.Body, "duplicate answer body on the other node");
                            Assert.True(fx.Emulator.VerifyResponse(dup, replay.Response),
                                "the replay is signed for the duplicate request");
                        }
                    }
                }
            }
        }

        [Test]
        public void BadConnectionStringsAreConfigurationErrorsWithoutThePassword()
        {
            var bad = Assert.Throws<ConfigurationException>(
                () => Store.OpenPostgres("host=127.0.0.1 password=Sup3rS3cret port=notaport"), "unparsable");
            Assert.Equal("conninfo", bad.Field, "field");
            Assert.True(!bad.Message.Contains("Sup3rS3cret"), "the password is not echoed: " + bad.Message);
            var clear = Assert.Throws<ConfigurationException>(
                () => Store.OpenPostgres("host=db.example.com sslmode=disable"), "no TLS to a remote host");
            Assert.Equal("conninfo.sslmode", clear.Field, "field");
            Assert.Throws<ArgumentNullException>(() => Store.OpenPostgres(null), "null");
        }
    }
}
