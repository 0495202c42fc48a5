// Tests of the access rules: CIDR parsing, first-match-wins lookup with pg_hba.conf semantics, the refusal
// wording, and [[pooler.hba]] / [pooler.tls] validation with exact positions.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.h"
#include "config/hba.h"

namespace pooler::config {
namespace {

IpNet ip(std::string_view text) {
  auto addr = parse_ip(text);
  EXPECT_TRUE(addr.has_value()) << text;
  return addr.value_or(IpNet{});
}

IpNet cidr(std::string_view text) {
  auto net = parse_cidr(text);
  EXPECT_TRUE(net.has_value()) << text << ": " << (net ? "" : net.error());
  return net.value_or(IpNet{});
}

HbaRule rule(HbaType type, std::vector<std::string> dbs, std::vector<std::string> users,
             std::optional<std::string> address, HbaMethod method) {
  HbaRule r;
  r.type = type;
  r.databases = std::move(dbs);
  r.users = std::move(users);
  if (address) {
    r.address_kind = HbaAddress::kCidr;
    r.address = cidr(*address);
  }
  r.method = method;
  return r;
}

HbaRequest tcp(std::string_view addr, std::string_view db, std::string_view user, bool ssl = false) {
  static IpNet storage;  // the request only borrows strings; the address is copied
  storage = ip(addr);
  return HbaRequest{.local = false, .ssl = ssl, .address = storage, .database = db, .user = user, .interfaces = {}};
}

// IPv4 and IPv6 networks contain exactly the addresses under their prefix.
TEST(Hba, CidrContains) {
  EXPECT_TRUE(net_contains(cidr("10.0.0.0/8"), ip("10.255.1.2")));
  EXPECT_FALSE(net_contains(cidr("10.0.0.0/8"), ip("11.0.0.1")));
  EXPECT_TRUE(net_contains(cidr("192.168.1.128/25"), ip("192.168.1.200")));
  EXPECT_FALSE(net_contains(cidr("192.168.1.128/25"), ip("192.168.1.127")));
  EXPECT_TRUE(net_contains(cidr("127.0.0.1/32"), ip("127.0.0.1")));
  EXPECT_FALSE(net_contains(cidr("127.0.0.1/32"), ip("127.0.0.2")));
  EXPECT_TRUE(net_contains(cidr("0.0.0.0/0"), ip("8.8.8.8")));
  EXPECT_TRUE(net_contains(cidr("::1/128"), ip("::1")));
  EXPECT_TRUE(net_contains(cidr("fe80::/10"), ip("febf::1")));
  EXPECT_FALSE(net_contains(cidr("fe80::/10"), ip("fec0::1")));
}

// An IPv4 rule never matches an IPv6 client, not even an IPv4-mapped one, as in PostgreSQL.
TEST(Hba, FamiliesDoNotMix) {
  EXPECT_FALSE(net_contains(cidr("0.0.0.0/0"), ip("::ffff:10.0.0.1")));
  EXPECT_FALSE(net_contains(cidr("::/0"), ip("10.0.0.1")));
}

// Bad addresses get a message that says what to write.
TEST(Hba, CidrErrors) {
  EXPECT_EQ(parse_cidr("10.0.0.1").error(), "\"10.0.0.1\" has no prefix length; a single host is \"10.0.0.1/32\"");
  EXPECT_EQ(parse_cidr("::1").error(), "\"::1\" has no prefix length; a single host is \"::1/128\"");
  EXPECT_EQ(parse_cidr("10.0.0.0/33").error(), "invalid prefix length \"33\" in \"10.0.0.0/33\", expected 0 to 32");
  EXPECT_EQ(parse_cidr("10.0.0.0/").error(), "invalid prefix length \"\" in \"10.0.0.0/\", expected 0 to 32");
  EXPECT_EQ(parse_cidr("10.0.0.0/8x").error(), "invalid prefix length \"8x\" in \"10.0.0.0/8x\", expected 0 to 32");
  EXPECT_EQ(parse_cidr("300.0.0.0/8").error(), "invalid IP address \"300.0.0.0\" in \"300.0.0.0/8\"");
  EXPECT_EQ(parse_cidr("10.1.2.3/8").error(),
            "\"10.1.2.3/8\" has bits set beyond its /8 prefix; did you mean \"10.0.0.0/8\"?");
  EXPECT_EQ(parse_cidr("db.example.com").error(),
            "invalid address \"db.example.com\", expected \"all\" or a CIDR such as \"10.0.0.0/8\" or \"::1/128\"");
  EXPECT_FALSE(parse_cidr("::1/129").has_value());
  EXPECT_TRUE(parse_cidr("::/0").has_value());
}

// Rules are tried in order and the first whose type, database, user and address all match wins.
TEST(Hba, FirstMatchWins) {
  std::vector<HbaRule> rules = {
      rule(HbaType::kHost, {"app"}, {"evil"}, "0.0.0.0/0", HbaMethod::kReject),
      rule(HbaType::kHost, {"app", "reports"}, {"all"}, "10.0.0.0/8", HbaMethod::kMd5),
      rule(HbaType::kHost, {"all"}, {"app"}, std::nullopt, HbaMethod::kScramSha256),
      rule(HbaType::kHost, {"sameuser"}, {"all"}, "127.0.0.0/8", HbaMethod::kTrust),
  };
  EXPECT_EQ(match_hba(rules, tcp("10.1.1.1", "app", "evil")), &rules[0]);
  EXPECT_EQ(match_hba(rules, tcp("10.1.1.1", "app", "bob")), &rules[1]);
  EXPECT_EQ(match_hba(rules, tcp("10.1.1.1", "reports", "bob")), &rules[1]);
  EXPECT_EQ(match_hba(rules, tcp("192.168.0.1", "app", "app")), &rules[2]);
  EXPECT_EQ(match_hba(rules, tcp("127.0.0.1", "bob", "bob")), &rules[3]);
  EXPECT_EQ(match_hba(rules, tcp("127.0.0.1", "other", "bob")), nullptr);
  EXPECT_EQ(match_hba(rules, tcp("192.168.0.1", "app", "bob")), nullptr);
}

// local matches only unix-socket clients; hostssl only TLS clients; hostnossl only plain TCP.
TEST(Hba, ConnectionTypes) {
  std::vector<HbaRule> rules = {
      rule(HbaType::kLocal, {"all"}, {"all"}, std::nullopt, HbaMethod::kTrust),
      rule(HbaType::kHostSsl, {"all"}, {"all"}, std::nullopt, HbaMethod::kCert),
      rule(HbaType::kHostNoSsl, {"all"}, {"all"}, std::nullopt, HbaMethod::kMd5),
  };
  HbaRequest local{.local = true, .ssl = false, .address = std::nullopt, .database = "app", .user = "app", .interfaces = {}};
  EXPECT_EQ(match_hba(rules, local), &rules[0]);
  EXPECT_EQ(match_hba(rules, tcp("127.0.0.1", "app", "app", true)), &rules[1]);
  EXPECT_EQ(match_hba(rules, tcp("127.0.0.1", "app", "app", false)), &rules[2]);
  std::vector<HbaRule> host_only = {rule(HbaType::kHost, {"all"}, {"all"}, std::nullopt, HbaMethod::kTrust)};
  EXPECT_EQ(match_hba(host_only, local), nullptr);
  EXPECT_EQ(match_hba(host_only, tcp("::1", "app", "app", true)), &host_only[0]);
}

// No rules at all: nothing matches (the daemon only consults the list when one is configured).
// samehost matches a client whose address is one of the host's own; samenet one in any subnet the host's
// interfaces are on (the interface's address with its netmask). Families never mix.
TEST(Hba, SameHostAndSameNet) {
  HbaRule same_host = rule(HbaType::kHost, {"all"}, {"all"}, std::nullopt, HbaMethod::kTrust);
  same_host.address_kind = HbaAddress::kSameHost;
  HbaRule same_net = rule(HbaType::kHost, {"all"}, {"all"}, std::nullopt, HbaMethod::kMd5);
  same_net.address_kind = HbaAddress::kSameNet;
  const std::vector<HbaRule> rules = {same_host, same_net};

  IpNet eth0 = ip("192.168.10.7");
  eth0.prefix = 24;
  IpNet eth0_v6 = ip("fd00:1::7");
  eth0_v6.prefix = 64;
  const std::vector<IpNet> interfaces = {ip("127.0.0.1"), eth0, eth0_v6};

  auto from = [&](std::string_view addr) {
    HbaRequest r = tcp(addr, "app", "app");
    r.interfaces = interfaces;
    return match_hba(rules, r);
  };
  EXPECT_EQ(from("192.168.10.7"), &rules[0]);
  EXPECT_EQ(from("127.0.0.1"), &rules[0]);
  EXPECT_EQ(from("192.168.10.200"), &rules[1]);
  EXPECT_EQ(from("fd00:1::1234"), &rules[1]);
  EXPECT_EQ(from("192.168.11.1"), nullptr);
  EXPECT_EQ(from("::ffff:192.168.10.7"), nullptr);
  // The interface with a /32 netmask is its own subnet only.
  EXPECT_EQ(from("127.0.0.2"), nullptr);

  // Without interfaces (unreadable) neither keyword matches.
  EXPECT_EQ(match_hba(rules, tcp("192.168.10.7", "app", "app")), nullptr);
  EXPECT_TRUE(uses_interfaces(rules));
  EXPECT_FALSE(uses_interfaces(std::vector<HbaRule>{
      rule(HbaType::kHost, {"all"}, {"all"}, "10.0.0.0/8", HbaMethod::kTrust)}));
}

TEST(Hba, EmptyListMatchesNothing) { EXPECT_EQ(match_hba({}, tcp("127.0.0.1", "app", "app")), nullptr); }

// The refusals read like PostgreSQL's, naming host, user, database and encryption, nothing else.
TEST(Hba, Messages) {
  EXPECT_EQ(hba_no_match_message("10.1.2.3", tcp("10.1.2.3", "app", "bob", true)),
            "no pooler.hba entry for host \"10.1.2.3\", user \"bob\", database \"app\", SSL encryption");
  HbaRequest local{.local = true, .ssl = false, .address = std::nullopt, .database = "app", .user = "bob", .interfaces = {}};
  EXPECT_EQ(hba_reject_message("[local]", local),
            "pooler.hba rejects connection for host \"[local]\", user \"bob\", database \"app\", no encryption");
}

std::vector<ConfigError> errors_of(std::string_view text) {
  auto config = load_string(text, "pooler.toml");
  if (config) return {};
  return config.error();
}

std::string joined(const std::vector<ConfigError>& errors) {
  std::string out;
  for (const auto& e : errors) out += e.to_string() + "\n";
  return out;
}

constexpr std::string_view kTls = R"(
[pooler.tls]
cert_file = "/etc/pooler/server.crt"
key_file = "/etc/pooler/server.key"
client_tls_ca = "/etc/pooler/ca.crt"
)";

// A full rule list loads in order with its lists, CIDRs and line numbers.
TEST(HbaConfig, Loads) {
  std::string text = std::string("[pooler]\n") + R"(
[[pooler.hba]]
type = "local"
database = "all"
user = "all"
method = "trust"

[[pooler.hba]]
type = "hostssl"
database = ["app", "reports"]
user = "app"
address = "10.0.0.0/8"
method = "cert"

[[pooler.hba]]
type = "host"
database = "all"
user = ["bob", "carol"]
address = "all"
method = "reject"
)" + std::string(kTls);
  auto config = load_string(text, "pooler.toml");
  ASSERT_TRUE(config.has_value()) << joined(config.error());
  const auto& hba = config->pooler.hba;
  ASSERT_EQ(hba.size(), 3u);
  EXPECT_EQ(hba[0].type, HbaType::kLocal);
  EXPECT_EQ(hba[0].line, 3);
  EXPECT_EQ(hba[1].databases, (std::vector<std::string>{"app", "reports"}));
  EXPECT_EQ(hba[1].method, HbaMethod::kCert);
  ASSERT_TRUE(hba[1].address.has_value());
  EXPECT_EQ(hba[1].address->prefix, 8);
  EXPECT_EQ(hba[2].users, (std::vector<std::string>{"bob", "carol"}));
  EXPECT_FALSE(hba[2].address.has_value());
  EXPECT_EQ(hba[2].address_kind, HbaAddress::kAll);
  EXPECT_EQ(hba[1].address_kind, HbaAddress::kCidr);
  EXPECT_EQ(config->pooler.tls.client_tls_mode, ClientTlsMode::kAllow);
}

// "samehost" and "samenet" load as PostgreSQL's keywords.
TEST(HbaConfig, SameHostSameNet) {
  auto config = load_string(R"([pooler]
[[pooler.hba]]
type = "host"
database = "all"
user = "all"
address = "samehost"
method = "trust"

[[pooler.hba]]
type = "host"
database = "all"
user = "all"
address = "samenet"
method = "md5"
)",
                            "pooler.toml");
  ASSERT_TRUE(config.has_value()) << joined(config.error());
  ASSERT_EQ(config->pooler.hba.size(), 2u);
  EXPECT_EQ(config->pooler.hba[0].address_kind, HbaAddress::kSameHost);
  EXPECT_EQ(config->pooler.hba[1].address_kind, HbaAddress::kSameNet);
  EXPECT_FALSE(config->pooler.hba[0].address.has_value());
  EXPECT_TRUE(uses_interfaces(config->pooler.hba));
}

// Every bad entry is reported at its key's line with the dotted key, all at once.
TEST(HbaConfig, Errors) {
  std::string text = std::string("[pooler]\n") + R"(
[[pooler.hba]]
type = "host"
database = "all"
user = "all"
address = "10.1.2.3/8"
method = "md5"

[[pooler.hba]]
type = "hots"
database = []
user = "all"
method = "trust"

[[pooler.hba]]
type = "local"
database = "all"
user = "all"
address = "127.0.0.1/32"
method = "peer"

[[pooler.hba]]
type = "host"
database = "all"
user = "all"
address = "all"
method = "cert"

[[pooler.hba]]
type = "host"
user = "all"
method = "trust"
)";
  auto errors = errors_of(text);
  const std::string all = joined(errors);
  EXPECT_NE(all.find("pooler.toml:7:11: pooler.hba[0].address: \"10.1.2.3/8\" has bits set beyond its /8 prefix; "
                     "did you mean \"10.0.0.0/8\"?"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("pooler.toml:11:8: pooler.hba[1].type: invalid value \"hots\", expected one of \"local\", "
                     "\"host\", \"hostssl\", \"hostnossl\""),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("pooler.toml:12:12: pooler.hba[1].database: names must not be empty"), std::string::npos) << all;
  EXPECT_NE(all.find("pooler.toml:20:11: pooler.hba[2].address: a local rule matches unix-socket clients"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("pooler.toml:21:10: pooler.hba[2].method: invalid value \"peer\""), std::string::npos) << all;
  EXPECT_NE(all.find("pooler.toml:28:10: pooler.hba[3].method: cert authentication is only supported on hostssl "
                     "rules"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("pooler.hba[4].database: missing"), std::string::npos) << all;
  EXPECT_NE(all.find("pooler.hba[4].address: missing"), std::string::npos) << all;
  EXPECT_EQ(errors.size(), 8u) << all;
}

// hostssl without client TLS can never match, and cert without a client CA can never succeed: both refused.
TEST(HbaConfig, NeedsTls) {
  auto errors = errors_of(R"([pooler]
[[pooler.hba]]
type = "hostssl"
database = "all"
user = "all"
address = "all"
method = "cert"
)");
  const std::string all = joined(errors);
  EXPECT_NE(all.find("pooler.toml:3:8: pooler.hba[0].type: a hostssl rule cannot match: client TLS is off"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("pooler.toml:7:10: pooler.hba[0].method: cert authentication needs [pooler.tls] client_tls_ca"),
            std::string::npos)
      << all;
}

// [pooler.tls]: key pairs go together, modes need what they use, unknown keys are named.
TEST(TlsConfig, Errors) {
  auto errors = errors_of(R"([pooler.tls]
cert_file = "a.crt"
client_tls_mode = "verify-full"
min_version = "TLSv1.1"
cipher = "HIGH"
)");
  const std::string all = joined(errors);
  EXPECT_NE(all.find("pooler.toml:2:13: pooler.tls.cert_file: cert_file and key_file go together"), std::string::npos)
      << all;
  EXPECT_NE(all.find("pooler.toml:3:19: pooler.tls.client_tls_mode: \"verify-full\" needs cert_file and key_file"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("pooler.toml:4:15: pooler.tls.min_version: invalid value \"TLSv1.1\", expected one of "
                     "\"TLSv1.2\", \"TLSv1.3\""),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("pooler.toml:5:1: pooler.tls.cipher: unknown key; did you mean \"ciphers\"?"), std::string::npos)
      << all;

  auto verify = errors_of(R"([pooler.tls]
cert_file = "a.crt"
key_file = "a.key"
client_tls_mode = "verify-ca"
client_tls_crl = "clients.crl"
)");
  EXPECT_NE(joined(verify).find("pooler.toml:4:19: pooler.tls.client_tls_mode: \"verify-ca\" needs client_tls_ca"),
            std::string::npos)
      << joined(verify);
  EXPECT_NE(joined(verify).find("pooler.toml:5:18: pooler.tls.client_tls_crl: needs client_tls_ca"), std::string::npos)
      << joined(verify);
}

// client_tls_mode defaults to allow with a certificate and to disable without one; explicit values stick.
TEST(TlsConfig, ModeDefaults) {
  auto with_cert = load_string("[pooler.tls]\ncert_file = \"a.crt\"\nkey_file = \"a.key\"\n", "p.toml");
  ASSERT_TRUE(with_cert.has_value());
  EXPECT_EQ(with_cert->pooler.tls.client_tls_mode, ClientTlsMode::kAllow);
  EXPECT_EQ(with_cert->pooler.tls.min_version, TlsVersion::kTls12);
  auto none = load_string("[pooler]\n", "p.toml");
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ(none->pooler.tls.client_tls_mode, ClientTlsMode::kDisable);
  auto require = load_string(
      "[pooler.tls]\ncert_file = \"a.crt\"\nkey_file = \"a.key\"\nclient_tls_mode = \"require\"\n", "p.toml");
  ASSERT_TRUE(require.has_value());
  EXPECT_EQ(require->pooler.tls.client_tls_mode, ClientTlsMode::kRequire);
}

// Server-side TLS files pass through per database; sslcert without sslkey is refused.
TEST(ServerTlsConfig, Keys) {
  auto config = load_string(R"([databases.app]
sslmode = "verify-full"
sslrootcert = "/etc/pooler/root.crt"
sslcert = "/etc/pooler/client.crt"
sslkey = "/etc/pooler/client.key"
sslcrl = "/etc/pooler/root.crl"
)",
                            "p.toml");
  ASSERT_TRUE(config.has_value()) << joined(config.error());
  const Database& db = config->databases.at("app");
  EXPECT_EQ(db.sslrootcert, "/etc/pooler/root.crt");
  EXPECT_EQ(db.sslcrl, "/etc/pooler/root.crl");
  auto half = errors_of("[databases.app]\nsslcert = \"c.crt\"\n");
  EXPECT_NE(joined(half).find("pooler.toml:2:11: databases.app.sslcert: sslcert and sslkey go together"),
            std::string::npos) << joined(half);
}

// The server-side connection limits are integers >= 0 (0 = no limit, the default).
TEST(LimitsConfig, Keys) {
  auto config = load_string("[pooler]\nmax_db_connections = 20\nmax_user_connections = 7\n", "p.toml");
  ASSERT_TRUE(config.has_value());
  EXPECT_EQ(config->pooler.max_db_connections, 20);
  EXPECT_EQ(config->pooler.max_user_connections, 7);
  EXPECT_EQ(load_string("[pooler]\n", "p.toml")->pooler.max_db_connections, 0);
  auto bad = errors_of("[pooler]\nmax_db_connections = -1\n");
  EXPECT_NE(joined(bad).find("pooler.toml:2:22: pooler.max_db_connections: must be >= 0, got -1"), std::string::npos)
      << joined(bad);
}

}  // namespace
}  // namespace pooler::config
