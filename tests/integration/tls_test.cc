// TLS on both hops, against a real PostgreSQL with ssl = on and a CA made at test time: psql and libpq
// with sslmode=require/verify-full through the pooler, pg_stat_ssl on the server hop, client_tls_mode =
// require refusing plain clients, client certificates (hba cert method), PostgreSQL 17 direct TLS, and a
// SIGHUP certificate swap that keeps connected clients.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "tests/harness/run_command.h"
#include "tests/harness/test_certs.h"
#include "tests/integration/integration_support.h"

namespace pooler::test {
namespace {

using namespace std::chrono_literals;

// The CN of the certificate the server presented on a libpq connection that uses TLS.
std::string peer_cn(PGconn* conn) {
  auto* ssl = static_cast<SSL*>(PQsslStruct(conn, "OpenSSL"));
  if (ssl == nullptr) return "(no TLS)";
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (cert == nullptr) return "(no certificate)";
  char cn[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
  X509_free(cert);
  return cn;
}

constexpr const char* kCertUser = "certuser";
constexpr const char* kCertPassword = "certuser-server-pw";
constexpr const char* kLookupUser = "lookup";
constexpr const char* kLookupPassword = "lookup-pw";

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ca_ = std::make_unique<TestCa>();
    rogue_ = std::make_unique<TestCa>("rogue CA");
    IssuedCert pg = ca_->issue("postgres", "localhost", /*server=*/true, /*for_postgres=*/true);
    v1_ = ca_->issue("pooler-v1", "pooler-v1", true);
    v2_ = ca_->issue("pooler-v2", "pooler-v2", true);
    certuser_ = ca_->issue("client-certuser", kCertUser, false);
    appcert_ = ca_->issue("client-app", kAppUser, false);
    rogue_certuser_ = rogue_->issue("rogue-certuser", kCertUser, false);
    live_cert_ = ca_->dir() / "pooler.crt";
    live_key_ = ca_->dir() / "pooler.key";
    install_pooler_cert(v1_);

    PgClusterOptions options = app_cluster_options();
    options.roles.push_back({kCertUser, kCertPassword, false});
    options.roles.push_back({kLookupUser, kLookupPassword, /*superuser=*/true});
    options.extra_conf = {"ssl = on", fmt::format("ssl_cert_file = '{}'", pg.cert.string()),
                          fmt::format("ssl_key_file = '{}'", pg.key.string())};
    stack_.cluster = std::make_unique<PgCluster>(options);
    stack_.cluster->psql("GRANT ALL ON DATABASE app TO certuser");
    // Known only to the server: through auth_query, logged in by the pooler's own TLS client.
    stack_.cluster->psql("CREATE ROLE serveronly LOGIN PASSWORD 'serveronly-pw'; "
                         "GRANT ALL ON DATABASE app TO serveronly");

    PoolerConfig config = app_pooler_config(*stack_.cluster);
    config.databases[0].extra_lines = {"sslmode = \"verify-full\"",
                                       fmt::format("sslrootcert = {}", toml_string(ca_->ca_cert().string()))};
    PoolerDatabase plain = config.databases[0];
    plain.name = "plain";
    plain.extra_lines = {"sslmode = \"disable\""};
    PoolerDatabase badca = config.databases[0];
    badca.name = "badca";
    badca.extra_lines = {"sslmode = \"verify-full\"",
                         fmt::format("sslrootcert = {}", toml_string(rogue_->ca_cert().string())),
                         "connect_timeout = 3.0"};
    // auth_query (the pooler's own server login) against the right CA and a rogue one.
    config.databases[0].extra_lines.push_back(fmt::format("auth_user = \"{}\"", kLookupUser));
    PoolerDatabase badca_lookup = badca;
    badca_lookup.name = "badca_lookup";
    badca_lookup.extra_lines.push_back(fmt::format("auth_user = \"{}\"", kLookupUser));
    badca_lookup.extra_lines.push_back("auth_dbname = \"app\"");
    config.databases.push_back(plain);
    config.databases.push_back(badca);
    config.databases.push_back(badca_lookup);
    config.users.push_back({kCertUser, kCertPassword});
    config.users.push_back({kLookupUser, kLookupPassword});
    config.extra_pooler_lines = {
        "",
        "[pooler.tls]",
        fmt::format("cert_file = {}", toml_string(live_cert_.string())),
        fmt::format("key_file = {}", toml_string(live_key_.string())),
        fmt::format("client_tls_ca = {}", toml_string(ca_->ca_cert().string())),
        "client_tls_mode = \"require\"",
        "",
        "[[pooler.hba]]",
        "type = \"hostssl\"",
        "database = \"all\"",
        fmt::format("user = \"{}\"", kCertUser),
        "address = \"127.0.0.1/32\"",
        "method = \"cert\"",
        "",
        "[[pooler.hba]]",
        "type = \"host\"",
        "database = \"all\"",
        "user = \"all\"",
        "address = \"all\"",
        "method = \"scram-sha-256\"",
    };
    stack_.daemon = std::make_unique<DaemonProcess>(config);
  }
  static void TearDownTestSuite() {
    stack_.reset();
    ca_.reset();
    rogue_.reset();
  }
  void TearDown() override { dump_logs_on_failure(stack_); }

  static void install_pooler_cert(const IssuedCert& cert) {
    std::filesystem::copy_file(cert.cert, live_cert_, std::filesystem::copy_options::overwrite_existing);
    std::filesystem::copy_file(cert.key, live_key_, std::filesystem::copy_options::overwrite_existing);
  }

  // A daemon of its own with client_tls_mode = verify-full against the test CA, plus `extra` [pooler.tls] lines.
  static std::vector<std::string> verify_full_tls(std::vector<std::string> extra = {}) {
    std::vector<std::string> lines = {
        "[pooler.tls]",
        fmt::format("cert_file = {}", toml_string(v1_.cert.string())),
        fmt::format("key_file = {}", toml_string(v1_.key.string())),
        fmt::format("client_tls_ca = {}", toml_string(ca_->ca_cert().string())),
        "client_tls_mode = \"verify-full\"",
    };
    lines.insert(lines.end(), extra.begin(), extra.end());
    return lines;
  }

  // libpq options presenting a client certificate over TLS.
  static std::string with_cert(const IssuedCert& c) {
    return fmt::format("sslmode=require sslcert={} sslkey={}", quote_conninfo_value(c.cert.string()),
                       quote_conninfo_value(c.key.string()));
  }

  static std::string tls_conninfo(const std::string& extra, const std::string& user = kAppUser,
                                  const std::string& password = kAppPassword, const std::string& db = kAppDatabase) {
    return pooler_conninfo(*stack_.daemon, user, password, db, extra);
  }

  // The daemon is alive and a fresh TLS client runs SELECT 1 through it (plain clients are refused here).
  static ::testing::AssertionResult daemon_serves_tls() {
    if (!stack_.daemon->alive()) return ::testing::AssertionFailure() << "daemon exited";
    PgConnPtr conn = try_connect(tls_conninfo("sslmode=require"));
    if (PQstatus(conn.get()) != CONNECTION_OK) {
      return ::testing::AssertionFailure() << "connect failed: " << PQerrorMessage(conn.get());
    }
    PgResultPtr r = exec_with_deadline(conn.get(), "SELECT 1", 20s);
    if (!r || PQresultStatus(r.get()) != PGRES_TUPLES_OK) return ::testing::AssertionFailure() << "SELECT 1 failed";
    return ::testing::AssertionSuccess();
  }

  static inline Stack stack_;
  static inline std::unique_ptr<TestCa> ca_;
  static inline std::unique_ptr<TestCa> rogue_;
  static inline IssuedCert v1_, v2_, certuser_, appcert_, rogue_certuser_;
  static inline std::filesystem::path live_cert_, live_key_;
};

// psql with sslmode=require: \conninfo reports TLS on the client hop and pg_stat_ssl reports it on the
// server hop (verify-full against the test CA); a database with sslmode=disable shows the difference.
TEST_F(TlsTest, PsqlBothHopsEncrypted) {
  std::vector<std::string> argv = {"psql", "-X", "-A", "-t", "-d", tls_conninfo("sslmode=require"), "-c",
                                   "\\conninfo", "-c", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"};
  CommandResult r = run_command(argv, 60s);
  ASSERT_EQ(r.exit_code, 0) << describe(argv, r);
  EXPECT_NE(r.out.find("SSL connection (protocol: TLSv1."), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\nt"), std::string::npos) << r.out;

  PgConnPtr plain = connect(tls_conninfo("sslmode=require", kAppUser, kAppPassword, "plain"));
  EXPECT_EQ(query_value(plain.get(), "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"), "f");
}

// libpq verifying the pooler's certificate against the test CA (verify-full, IP SAN 127.0.0.1): TLS in use.
TEST_F(TlsTest, LibpqVerifyFull) {
  PgConnPtr conn = connect(tls_conninfo(
      fmt::format("sslmode=verify-full sslrootcert={}", quote_conninfo_value(ca_->ca_cert().string()))));
  EXPECT_EQ(PQsslInUse(conn.get()), 1);
  EXPECT_EQ(std::string(PQsslAttribute(conn.get(), "protocol")).substr(0, 6), "TLSv1.");
  EXPECT_EQ(query_value(conn.get(), "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"), "t");
}

// Under client_tls_mode = require a client that does not ask for TLS gets FATAL 28000 saying so.
TEST_F(TlsTest, PlainClientRefusedUnderRequire) {
  PgConnPtr conn = try_connect(tls_conninfo("sslmode=disable"));
  EXPECT_EQ(PQstatus(conn.get()), CONNECTION_BAD);
  EXPECT_NE(std::string(PQerrorMessage(conn.get())).find("TLS is required"), std::string::npos)
      << PQerrorMessage(conn.get());

  RawClient raw(stack_.daemon->listen_addr(), stack_.daemon->port());
  ASSERT_TRUE(raw.send(wire::startup_message({{"user", kAppUser}, {"database", kAppDatabase}})));
  EXPECT_TRUE(rejected_and_closed(raw, "28000", /*error_required=*/true));
  EXPECT_TRUE(daemon_serves_tls());
}

// The server hop verifies the server against sslrootcert: a CA that did not sign it makes logins fail.
TEST_F(TlsTest, ServerVerifyFullRejectsWrongCa) {
  PgConnPtr conn = try_connect(tls_conninfo("sslmode=require", kAppUser, kAppPassword, "badca"));
  EXPECT_EQ(PQstatus(conn.get()), CONNECTION_BAD);
  EXPECT_TRUE(eventually([] { return stack_.daemon->log().find("certificate verify failed") != std::string::npos; }))
      << stack_.daemon->log_tail();
}

// hba method cert: a verified client certificate whose CN is the user logs in without a password; a
// certificate for another CN, none at all, or one from another CA is refused.
// A user known only to the server (auth_query): the pooler's own login, not libpq's, carries the server
// hop, and it still verifies the server against sslrootcert and runs encrypted.
TEST_F(TlsTest, OwnServerLoginIsEncryptedAndVerified) {
  PgConnPtr conn = connect(tls_conninfo("sslmode=require", "serveronly", "serveronly-pw"));
  EXPECT_EQ(query_value(conn.get(), "SELECT current_user"), "serveronly");
  EXPECT_EQ(query_value(conn.get(), "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"), "t");
  EXPECT_NE(stack_.daemon->log().find("event=auth_query "), std::string::npos);

  // The same login towards a server whose certificate the configured CA did not sign is refused.
  PgConnPtr bad = try_connect(tls_conninfo("sslmode=require", "serveronly", "serveronly-pw", "badca_lookup"));
  ASSERT_NE(PQstatus(bad.get()), CONNECTION_OK);
  auto own_login_refused = [] {
    std::istringstream lines(stack_.daemon->log());
    for (std::string line; std::getline(lines, line);) {
      if (line.find("badca_lookup/serveronly") != std::string::npos &&
          line.find("certificate verify failed") != std::string::npos) {
        return true;
      }
    }
    return false;
  };
  EXPECT_TRUE(eventually(own_login_refused)) << stack_.daemon->log_tail();
  EXPECT_TRUE(daemon_serves_tls());
}

TEST_F(TlsTest, ClientCertificateLogin) {
  PgConnPtr ok = connect(tls_conninfo(with_cert(certuser_), kCertUser, ""));
  EXPECT_EQ(query_value(ok.get(), "SELECT current_user"), kCertUser);

  PgConnPtr wrong_cn = try_connect(tls_conninfo(with_cert(appcert_), kCertUser, ""));
  EXPECT_EQ(PQstatus(wrong_cn.get()), CONNECTION_BAD);
  EXPECT_NE(std::string(PQerrorMessage(wrong_cn.get())).find("certificate authentication failed for user \"certuser\""),
            std::string::npos)
      << PQerrorMessage(wrong_cn.get());

  PgConnPtr none = try_connect(tls_conninfo("sslmode=require", kCertUser, ""));
  EXPECT_EQ(PQstatus(none.get()), CONNECTION_BAD);
  EXPECT_NE(std::string(PQerrorMessage(none.get())).find("connection requires a valid client certificate"),
            std::string::npos)
      << PQerrorMessage(none.get());

  PgConnPtr rogue = try_connect(tls_conninfo(with_cert(rogue_certuser_), kCertUser, ""));
  EXPECT_EQ(PQstatus(rogue.get()), CONNECTION_BAD);
  EXPECT_TRUE(daemon_serves_tls());
}

// A TLS client that opens with a ClientHello (PostgreSQL 17's sslnegotiation=direct) and ALPN "postgresql"
// gets its startup answered over TLS; one without ALPN is hung up on.
TEST_F(TlsTest, DirectTls) {
  auto attempt = [](bool alpn) -> std::optional<char> {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(stack_.daemon->port()));
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd);
      return std::nullopt;
    }
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (alpn) {
      static const unsigned char kProto[] = {10, 'p', 'o', 's', 't', 'g', 'r', 'e', 's', 'q', 'l'};
      SSL_set_alpn_protos(ssl, kProto, sizeof kProto);
    }
    std::optional<char> first;
    if (SSL_connect(ssl) == 1) {
      std::string startup = wire::startup_message({{"user", kAppUser}, {"database", kAppDatabase}});
      char type = 0;
      if (SSL_write(ssl, startup.data(), static_cast<int>(startup.size())) > 0 && SSL_read(ssl, &type, 1) == 1) {
        first = type;
      }
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    ::close(fd);
    ERR_clear_error();
    return first;
  };
  EXPECT_EQ(attempt(true), std::optional<char>('R'));  // AuthenticationSASL
  EXPECT_EQ(attempt(false), std::nullopt);
  EXPECT_TRUE(daemon_serves_tls());
}

// SIGHUP after the certificate files were replaced: a client connected before keeps working on its session;
// a new client is served the new certificate.
TEST_F(TlsTest, ReloadSwapsCertificateKeepsClients) {
  PgConnPtr before = connect(tls_conninfo("sslmode=require"));
  ASSERT_EQ(peer_cn(before.get()), "pooler-v1");
  install_pooler_cert(v2_);
  ASSERT_TRUE(sighup_until(*stack_.daemon, "event=reloaded"));
  EXPECT_EQ(query_value(before.get(), "SELECT 'still here'"), "still here");
  PgConnPtr after = connect(tls_conninfo("sslmode=require"));
  EXPECT_EQ(peer_cn(after.get()), "pooler-v2");
  EXPECT_EQ(query_value(after.get(), "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"), "t");
  install_pooler_cert(v1_);
}

// A reload whose certificate does not load is refused as a whole; the running context keeps serving.
TEST_F(TlsTest, ReloadWithBrokenKeyKeepsOldContext) {
  std::filesystem::copy_file(appcert_.key, live_key_, std::filesystem::copy_options::overwrite_existing);
  EXPECT_TRUE(sighup_until(*stack_.daemon, "event=reload_failed"));
  EXPECT_NE(stack_.daemon->log().find("[pooler.tls] key_file"), std::string::npos) << stack_.daemon->log_tail();
  install_pooler_cert(v1_);
  PgConnPtr conn = connect(tls_conninfo("sslmode=require"));
  EXPECT_EQ(PQsslInUse(conn.get()), 1);
}

// client_tls_mode = verify-full on a daemon of its own: a certificate from client_tls_ca whose CN is the user
// is required on top of the password; another CN or no certificate is refused with FATAL 28000.
TEST_F(TlsTest, VerifyFullModeNeedsMatchingCertificate) {
  PoolerConfig config = app_pooler_config(*stack_.cluster);
  config.extra_pooler_lines = verify_full_tls();
  DaemonProcess daemon(config);
  auto attempt = [&](const std::string& extra) { return try_connect(pooler_conninfo(daemon, kAppUser, kAppPassword,
                                                                                    kAppDatabase, extra)); };
  auto cert_args = with_cert;
  PgConnPtr ok = attempt(cert_args(appcert_));
  ASSERT_EQ(PQstatus(ok.get()), CONNECTION_OK) << PQerrorMessage(ok.get());
  EXPECT_EQ(query_value(ok.get(), "SELECT current_user"), kAppUser);
  PgConnPtr wrong_password = attempt(cert_args(appcert_) + " password=wrong");
  EXPECT_EQ(PQstatus(wrong_password.get()), CONNECTION_BAD);
  PgConnPtr other_cn = attempt(cert_args(certuser_));
  EXPECT_EQ(PQstatus(other_cn.get()), CONNECTION_BAD);
  EXPECT_NE(std::string(PQerrorMessage(other_cn.get())).find("CN mismatch"), std::string::npos)
      << PQerrorMessage(other_cn.get());
  PgConnPtr no_cert = attempt("sslmode=require");
  EXPECT_EQ(PQstatus(no_cert.get()), CONNECTION_BAD);
  EXPECT_NE(std::string(PQerrorMessage(no_cert.get())).find("connection requires a valid client certificate"),
            std::string::npos)
      << PQerrorMessage(no_cert.get());
  EXPECT_EQ(daemon.stop(), 0) << daemon.log_tail();
}

// client_tls_crl: a client certificate the CRL revokes fails the handshake; one it does not revoke logs in.
// An empty CRL from the same CA admits both, which shows the refusal is the revocation and nothing else.
TEST_F(TlsTest, RevokedClientCertificateRefused) {
  const IssuedCert revoked = ca_->issue("app-revoked", kAppUser, false);
  const std::filesystem::path crl = ca_->make_crl("revoking", {revoked.cert});
  const std::filesystem::path empty_crl = ca_->make_crl("empty", {});
  auto run = [&](const std::filesystem::path& crl_file, bool revoked_admitted) {
    SCOPED_TRACE(crl_file.string());
    PoolerConfig config = app_pooler_config(*stack_.cluster);
    config.extra_pooler_lines = verify_full_tls({fmt::format("client_tls_crl = {}", toml_string(crl_file.string()))});
    DaemonProcess daemon(config);
    auto attempt = [&](const IssuedCert& c) {
      return try_connect(pooler_conninfo(daemon, kAppUser, kAppPassword, kAppDatabase, with_cert(c)));
    };
    PgConnPtr good = attempt(appcert_);
    ASSERT_EQ(PQstatus(good.get()), CONNECTION_OK) << PQerrorMessage(good.get());
    EXPECT_EQ(query_value(good.get(), "SELECT current_user"), kAppUser);
    PgConnPtr bad = attempt(revoked);
    if (revoked_admitted) {
      EXPECT_EQ(PQstatus(bad.get()), CONNECTION_OK) << PQerrorMessage(bad.get());
    } else {
      EXPECT_EQ(PQstatus(bad.get()), CONNECTION_BAD);
      EXPECT_NE(std::string(PQerrorMessage(bad.get())).find("certificate revoked"), std::string::npos)
          << PQerrorMessage(bad.get());
    }
    EXPECT_TRUE(daemon.alive());
    EXPECT_EQ(daemon.stop(), 0) << daemon.log_tail();
  };
  run(crl, false);
  run(empty_crl, true);
}

}  // namespace
}  // namespace pooler::test
