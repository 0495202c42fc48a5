// ClientConn: the client's side of the relay — startup, auth, login, and the message stream to the server.
#include "daemon/client_conn.h"

#include <openssl/rand.h>

#include <spdlog/spdlog.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

#include "config/hba.h"
#include "config/enum_names.h"
#include "daemon/daemon.h"
#include "daemon/pool_runtime.h"
#include "daemon/logging.h"
#include "daemon/scratch.h"
#include "daemon/server_conn.h"
#include "daemon/tls_context.h"
#include "protocol/auth_messages.h"
#include "protocol/frame.h"
#include "protocol/md5_auth.h"
#include "protocol/startup.h"

namespace pooler::daemon {

namespace {

constexpr int kMaxReadsPerEvent = 16;
// Above this much unsent output on the server socket, stop reading from the client.
constexpr std::size_t kServerHighWater = 256 * 1024;
// Auth messages are tiny; anything bigger before login is an attack or a bug.
constexpr std::size_t kMaxAuthMessage = 16 * 1024;
// Interpreting relay: bytes for the server are gathered and sent once per read, except a run this large
// (COPY data), which goes straight from the read buffer when nothing is gathered before it.
constexpr std::size_t kDirectSend = 16 * 1024;
constexpr std::size_t kOutFlush = 256 * 1024;
// An assembled message buffer above this is given back after use rather than kept for the next one.
constexpr std::size_t kKeepMessageBuffer = 1024 * 1024;

constexpr std::string_view kParseComplete{"1\0\0\0\4", 5};
constexpr std::string_view kCloseComplete{"3\0\0\0\4", 5};

std::string command_complete(std::string_view tag) {
  std::string out;
  std::size_t start = protocol::begin_message(out, 'C');
  protocol::append_cstring(out, tag);
  protocol::finish_message(out, start);
  return out;
}

// The NUL-terminated string at the front of `in`, advancing past it; nullopt if there is no NUL.
std::optional<std::string_view> take_cstring(std::string_view& in) {
  auto nul = in.find('\0');
  if (nul == std::string_view::npos) return std::nullopt;
  std::string_view s = in.substr(0, nul);
  in.remove_prefix(nul + 1);
  return s;
}

// Startup parameters that are protocol-level or handled by the pooler itself, never SET on the server.
bool is_connection_param(std::string_view k) {
  return k == "user" || k == "database" || k == "options" || k == "replication" || k.starts_with("_pq_.");
}

std::string quote_literal(std::string_view v) {
  std::string out;
  bool backslash = v.find('\\') != std::string_view::npos;
  if (backslash) out += 'E';
  out += '\'';
  for (char ch : v) {
    if (ch == '\'') out += '\'';
    if (ch == '\\') out += '\\';
    out += ch;
  }
  out += '\'';
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return std::tolower(x) == std::tolower(y); });
}

// "-c name=value --name=value" (PostgreSQL's options syntax, with backslash escapes for spaces).
std::vector<std::pair<std::string, std::string>> parse_options(std::string_view opts) {
  std::vector<std::string> words;
  std::string cur;
  bool have = false;
  for (std::size_t i = 0; i < opts.size(); ++i) {
    char ch = opts[i];
    if (ch == '\\' && i + 1 < opts.size()) {
      cur += opts[++i];
      have = true;
    } else if (ch == ' ' || ch == '\t') {
      if (have) words.push_back(std::move(cur));
      cur.clear();
      have = false;
    } else {
      cur += ch;
      have = true;
    }
  }
  if (have) words.push_back(std::move(cur));
  std::vector<std::pair<std::string, std::string>> out;
  for (std::size_t i = 0; i < words.size(); ++i) {
    std::string_view w = words[i];
    std::string_view kv;
    if (w == "-c" && i + 1 < words.size()) {
      kv = words[++i];
    } else if (w.starts_with("-c")) {
      kv = w.substr(2);
    } else if (w.starts_with("--")) {
      kv = w.substr(2);
    } else {
      continue;
    }
    auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    std::string name(kv.substr(0, eq));
    std::replace(name.begin(), name.end(), '-', '_');
    out.emplace_back(std::move(name), std::string(kv.substr(eq + 1)));
  }
  return out;
}

// "10.1.2.3:5432" → "10.1.2.3", "[::1]:5432" → "::1"; the unix socket is "[local]", as PostgreSQL says.
std::string peer_host(const std::string& peer) {
  if (peer == "unix") return "[local]";
  std::string host = peer.substr(0, peer.rfind(':'));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return host;
}

// This host's interface addresses with their netmasks as prefixes, for samehost/samenet rules. Read at each
// login that needs them, as PostgreSQL does, so an address added later is seen; empty when unreadable.
std::vector<config::IpNet> interface_networks() {
  std::vector<config::IpNet> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) {
    spdlog::warn("event=getifaddrs_failed error=\"{}\"", std::strerror(errno));
    return out;
  }
  for (const ifaddrs* ifa = list; ifa != nullptr; ifa = ifa->ifa_next) {
    if (ifa->ifa_addr == nullptr || ifa->ifa_netmask == nullptr) continue;
    config::IpNet net;
    const unsigned char* addr = nullptr;
    const unsigned char* mask = nullptr;
    std::size_t len = 0;
    if (ifa->ifa_addr->sa_family == AF_INET) {
      net.family = 4;
      len = 4;
      addr = reinterpret_cast<const unsigned char*>(&reinterpret_cast<const sockaddr_in*>(ifa->ifa_addr)->sin_addr);
      mask = reinterpret_cast<const unsigned char*>(
          &reinterpret_cast<const sockaddr_in*>(ifa->ifa_netmask)->sin_addr);
    } else if (ifa->ifa_addr->sa_family == AF_INET6) {
      net.family = 6;
      len = 16;
      addr = reinterpret_cast<const unsigned char*>(
          &reinterpret_cast<const sockaddr_in6*>(ifa->ifa_addr)->sin6_addr);
      mask = reinterpret_cast<const unsigned char*>(
          &reinterpret_cast<const sockaddr_in6*>(ifa->ifa_netmask)->sin6_addr);
    } else {
      continue;
    }
    std::memcpy(net.bytes.data(), addr, len);
    // Netmasks are contiguous in practice; the prefix is their count of leading ones.
    net.prefix = 0;
    for (std::size_t i = 0; i < len; ++i) net.prefix += std::countl_one(static_cast<std::uint8_t>(mask[i]));
    out.push_back(net);
  }
  freeifaddrs(list);
  return out;
}

// The first byte of a TLS handshake record: a ClientHello sent without SSLRequest (direct TLS).
constexpr unsigned char kTlsHandshakeRecord = 0x16;

void set_kv(std::vector<std::pair<std::string, std::string>>& v, std::string_view k, std::string_view val) {
  for (auto& [key, value] : v) {
    if (iequals(key, k)) {
      value.assign(val);
      return;
    }
  }
  v.emplace_back(std::string(k), std::string(val));
}

}  // namespace

// Interprets the client → server stream while linked: forwards everything but Terminate.
struct ClientConn::RelayHandler {
  ClientConn& c;
  int requests = 0;
  bool terminate = false;
  protocol::ScanStep on_start(char type) {
    if (type == 'X') {
      terminate = true;
      return protocol::ScanStep::kStopBefore;
    }
    return protocol::ScanStep::kContinue;
  }
  bool want_body(char) { return false; }
  protocol::ScanStep on_end(char type, std::string_view) {
    switch (type) {
      case 'Q':
      case 'F':
        ++requests;
        break;
      case 'S':
        ++requests;
        c.unsynced_ = false;
        break;
      case 'P':
      case 'B':
      case 'D':
      case 'E':
      case 'C':
      case 'H':
        c.unsynced_ = true;
        break;
      default:
        break;
    }
    return protocol::ScanStep::kContinue;
  }
};

// The interpreting relay's scan: stops before the messages looked at whole, streams the rest, and records
// what each streamed request will be answered with.
struct ClientConn::InterpretHandler {
  ClientConn& c;
  int requests = 0;
  bool stop = false;  // stopped before a message to look at whole
  protocol::ScanStep on_start(char type) {
    if (c.skip_to_sync_ && type != 'S') {
      stop = true;  // dropped whole by handle_message
      return protocol::ScanStep::kStopBefore;
    }
    switch (type) {
      case 'P':
      case 'B':
      case 'D':
      case 'C':
      case 'Q':
      case 'X':
        stop = true;
        return protocol::ScanStep::kStopBefore;
      case 'E':
        // Only to answer an Execute of a DEALLOCATE the pooler handled itself (see fake_portal_tag_).
        if (!c.prepared_) return protocol::ScanStep::kContinue;
        stop = true;
        return protocol::ScanStep::kStopBefore;
      default:
        return protocol::ScanStep::kContinue;
    }
  }
  bool want_body(char) { return false; }
  protocol::ScanStep on_end(char type, std::string_view) {
    ServerConn& s = *c.server_;
    switch (type) {
      case 'E':
        c.unsynced_ = true;
        s.owed().push(OwedAnswers::Kind::kExecute, s.statements());
        break;
      case 'S':
        ++requests;
        c.unsynced_ = false;
        c.skip_to_sync_ = false;
        s.owed().push(OwedAnswers::Kind::kSync, s.statements());
        break;
      case 'F':
        ++requests;
        s.owed().push(OwedAnswers::Kind::kQuery, s.statements());
        break;
      case 'H':
        c.unsynced_ = true;
        break;
      default:
        break;
    }
    return protocol::ScanStep::kContinue;
  }
};

ClientConn::ClientConn(Daemon& daemon, std::uint64_t id, std::string peer)
    : daemon_(daemon), id_(id), peer_(std::move(peer)), connected_at_(std::chrono::steady_clock::now()) {
  scanner_.set_max_message_size(daemon_.config().pooler.max_message_size);
}

ClientConn::~ClientConn() {
  sock_.close();
  if (ssl_ != nullptr) SSL_free(ssl_);
}

int ClientConn::start(int fd) { return sock_.open(daemon_.loop(), fd, /*owns_fd=*/true, this); }

bool ClientConn::logged_in() const {
  return state_ == State::kReady || state_ == State::kWaitServer || state_ == State::kSync ||
         state_ == State::kLinked || state_ == State::kAdmin;
}

void ClientConn::send_and_flush(const std::string& bytes) {
  if (!sock_.send(bytes)) close();
}

void ClientConn::fatal(std::string_view sqlstate, std::string message, std::string detail) {
  // One FATAL per client: a second one (e.g. from a drain check while releasing the server) is not sent.
  if (state_ == State::kClosed || close_after_flush_) return;
  spdlog::info("event=client_error client={} peer={} user={} database={} sqlstate={} message={}", id_, peer_,
               user_, database_, sqlstate, log_value(message));
  std::string out;
  protocol::write_error_response(
      out, protocol::ErrorFields{protocol::Severity::kFatal, std::string(sqlstate), std::move(message),
                                 std::move(detail), {}});
  if (!sock_.send(out) || sock_.pending() == 0) {
    close();
    return;
  }
  // Let the error reach the client before closing; stop reading meanwhile (the janitor closes a client that
  // does not read it within a few seconds).
  close_after_flush_ = true;
  closing_since_ = std::chrono::steady_clock::now();
  sock_.set_reading(false);
  if (pool_ != nullptr && state_ == State::kLoginWait) pool_->cancel_request(this);
  if (server_ != nullptr) release_server();
}

void ClientConn::close() {
  if (state_ == State::kClosed) return;
  State was = state_;
  state_ = State::kClosed;
  if (lookup_ticket_) daemon_.cancel_lookup(*std::exchange(lookup_ticket_, std::nullopt));
  stop_idle_tx_timer();
  if (pool_ != nullptr && (was == State::kLoginWait || was == State::kWaitServer)) pool_->cancel_request(this);
  if (server_ != nullptr) {
    ServerConn* s = server_;
    server_ = nullptr;
    s->unlink();
    PoolRuntime::ReleaseInfo info{scanner_.at_boundary(), unsynced_};
    if (pool_ != nullptr) pool_->release(s, info);
  }
  sock_.close(terminated_);
  spdlog::debug("event=client_closed client={} peer={}", id_, peer_);
  daemon_.retire(this);
}

void ClientConn::on_socket_error(int) { close(); }

void ClientConn::on_drained() {
  if (tls_handshake_) {
    continue_tls_handshake();
    return;
  }
  if (close_after_flush_) {
    close();
    return;
  }
  // Backpressure release: the server may send again.
  if (server_ != nullptr && state_ == State::kLinked) server_->pause_reading(false);
}

void ClientConn::on_server_drained() {
  if (state_ == State::kLinked && !close_after_flush_) sock_.set_reading(true);
}

std::size_t ClientConn::deliver(std::string_view bytes) {
  if (state_ == State::kClosed) return 0;
  if (!sock_.send(bytes)) {
    close();
    return 0;
  }
  return sock_.pending();
}

void ClientConn::on_readable() {
  if (tls_handshake_) {
    continue_tls_handshake();
    return;
  }
  if (state_ == State::kStartup && ssl_ == nullptr && in_.empty() && daemon_.client_tls_context() != nullptr) {
    // No length of a real startup packet starts with 0x16 (that would be over 350 MB), so the byte tells a
    // direct TLS client apart without consuming anything.
    if (auto first = sock_.peek_byte(); first && *first == kTlsHandshakeRecord) {
      start_tls(/*direct=*/true);
      return;
    }
  }
  char* buf = scratch_buffer();
  for (int i = 0; i < kMaxReadsPerEvent && state_ != State::kClosed && sock_.reading(); ++i) {
    IoResult r = sock_.read(buf, kScratchSize);
    if (r.status == IoStatus::kWouldBlock) return;
    if (r.status != IoStatus::kOk) {
      // The client vanished (possibly mid-message): the server connection is cleaned up by close().
      close();
      return;
    }
    std::string_view data(buf, r.n);
    switch (state_) {
      case State::kStartup:
        handle_startup_bytes(data);
        break;
      case State::kAuth:
        handle_auth_bytes(data);
        break;
      case State::kAuthLookup:
        // Reading is off while auth_query runs; anything already read waits for the challenge.
        in_.append(data);
        break;
      case State::kLinked:
        relay_to_server(data);
        break;
      case State::kReady:
        need_server(data);
        break;
      case State::kAdmin:
        handle_admin_bytes(data);
        break;
      case State::kLoginWait:
      case State::kLoginSync:
      case State::kWaitServer:
      case State::kSync:
        // Reading is paused in these states; bytes that raced in are kept for later.
        in_.append(data);
        sock_.set_reading(false);
        break;
      case State::kClosed:
        return;
    }
    // A TLS read returns one record at most, so a short read does not mean the socket is empty.
    if (r.n < kScratchSize && !sock_.is_tls()) return;
  }
}

// ---- startup ----

void ClientConn::handle_startup_bytes(std::string_view data) {
  in_.append(data);
  while (state_ == State::kStartup && !in_.empty()) {
    auto dec = protocol::decode_startup(in_);
    if (!dec) {
      fatal(dec.error().sqlstate, dec.error().message);
      return;
    }
    if (!dec->has_value()) return;
    std::size_t used = (*dec)->consumed;
    auto packet = std::move((*dec)->packet);
    if (std::holds_alternative<protocol::SslRequest>(packet) ||
        std::holds_alternative<protocol::GssEncRequest>(packet)) {
      in_.erase(0, used);
      // No TLS or GSS yet: 'N' tells the client to go on in plain text on this connection.
      if (!in_.empty()) {
        // A client must wait for our answer; bytes after the request would be a buffer-stuffing attempt.
        fatal("08P01", "received unencrypted data after SSL request");
        return;
      }
      if (std::holds_alternative<protocol::SslRequest>(packet) && ssl_ != nullptr) {
        fatal("08P01", "received SSLRequest on an already encrypted connection");
        return;
      }
      if (std::holds_alternative<protocol::SslRequest>(packet) && daemon_.client_tls_context() != nullptr) {
        send_and_flush(std::string(1, 'S'));
        if (state_ == State::kClosed) return;
        // 'S' must be on the wire before the handshake takes over the socket; one byte to a fresh socket
        // always is, short of a peer that shrank its window to nothing.
        if (sock_.pending() != 0) {
          close();
          return;
        }
        start_tls(/*direct=*/false);
        return;
      }
      send_and_flush(std::string(1, 'N'));
      continue;
    }
    if (auto* cancel = std::get_if<protocol::CancelRequest>(&packet)) {
      daemon_.handle_cancel(cancel->process_id, cancel->secret_key);
      close();
      return;
    }
    auto& startup = std::get<protocol::StartupMessage>(packet);
    std::string rest = in_.substr(used);
    in_.swap(rest);
    if (const std::string* u = startup.find("user")) user_ = *u;
    const std::string* db = startup.find("database");
    database_ = (db != nullptr && !db->empty()) ? *db : user_;
    if (const std::string* rep = startup.find("replication"); rep != nullptr && *rep != "false" && *rep != "0" &&
                                                              *rep != "off" && *rep != "no") {
      fatal("08P01", "replication connections are not supported by the pooler");
      return;
    }
    std::vector<std::string> unrecognized;
    for (const auto& [k, v] : startup.params) {
      if (k.starts_with("_pq_.")) {
        unrecognized.push_back(k);
      } else if (k == "options") {
        for (auto& [ok, ov] : parse_options(v)) set_kv(params_, ok, ov);
      } else if (!is_connection_param(k)) {
        set_kv(params_, k, v);
      }
    }
    if (startup.minor > 0 || !unrecognized.empty()) {
      std::string out;
      protocol::write_negotiate_protocol_version(out, 0, unrecognized);
      send_and_flush(out);
      if (state_ == State::kClosed) return;
    }
    spdlog::debug("event=client_startup client={} peer={} user={} database={}", id_, peer_, user_, database_);
    if (daemon_.client_count() > static_cast<std::size_t>(daemon_.config().pooler.max_client_conn)) {
      daemon_.metrics().process().client_connections_refused_max_client_conn.Increment();
      fatal("53300", fmt::format("sorry, too many clients already (max_client_conn {})",
                                 daemon_.config().pooler.max_client_conn));
      return;
    }
    begin_auth();
  }
}

// ---- TLS ----

void ClientConn::start_tls(bool direct) {
  ssl_ = SSL_new(daemon_.client_tls_context());
  if (ssl_ == nullptr || SSL_set_fd(ssl_, sock_.fd()) != 1) {
    spdlog::error("event=client_tls_failed client={} peer={} error={}", id_, peer_, log_value(openssl_error()));
    close();
    return;
  }
  SSL_set_accept_state(ssl_);
  sock_.set_ssl(ssl_);
  tls_handshake_ = true;
  direct_tls_ = direct;
  continue_tls_handshake();
}

void ClientConn::continue_tls_handshake() {
  const IoStatus st = sock_.handshake();
  if (st == IoStatus::kWouldBlock) return;
  tls_handshake_ = false;
  if (st != IoStatus::kOk) {
    // Nothing can be said in plain text once the client has started TLS: log why and hang up, as PostgreSQL.
    spdlog::info("event=client_tls_failed client={} peer={} error={}", id_, peer_, log_value(openssl_error()));
    close();
    return;
  }
  if (direct_tls_ && !alpn_is_postgresql(ssl_)) {
    spdlog::info("event=client_tls_failed client={} peer={} error=\"direct TLS without ALPN postgresql\"", id_,
                 peer_);
    close();
    return;
  }
  spdlog::debug("event=client_tls client={} peer={} version={} cipher={} direct={}", id_, peer_,
                SSL_get_version(ssl_), SSL_get_cipher_name(ssl_), direct_tls_);
  // The startup packet may have come with the handshake's last flight and sit in OpenSSL's buffer already.
  on_readable();
}

// ---- authentication ----

std::optional<config::HbaMethod> ClientConn::access_method() {
  const config::Pooler& p = daemon_.config().pooler;
  const bool local = peer_ == "unix";
  const bool tls = ssl_ != nullptr;
  const config::ClientTlsMode mode = p.tls.client_tls_mode;
  // Unix-socket clients cannot use TLS (libpq never asks there) and need none: require is about the network.
  if (!local && !tls && mode >= config::ClientTlsMode::kRequire) {
    fatal("28000", "TLS is required: connect with sslmode=require or stronger");
    return std::nullopt;
  }
  if (tls && (mode == config::ClientTlsMode::kVerifyCa || mode == config::ClientTlsMode::kVerifyFull)) {
    const std::optional<std::string> cn = verified_peer_cn(ssl_);
    if (!cn) {
      fatal("28000", "connection requires a valid client certificate");
      return std::nullopt;
    }
    if (mode == config::ClientTlsMode::kVerifyFull && *cn != user_) {
      spdlog::info("event=client_cert_mismatch client={} user={} cn={}", id_, user_, log_value(*cn));
      fatal("28000", fmt::format("certificate validation (client_tls_mode verify-full) failed for user \"{}\": "
                                 "CN mismatch",
                                 user_));
      return std::nullopt;
    }
  }
  if (p.hba.empty()) {
    switch (p.auth_type) {
      case config::AuthType::kTrust: return config::HbaMethod::kTrust;
      case config::AuthType::kMd5: return config::HbaMethod::kMd5;
      case config::AuthType::kScramSha256: return config::HbaMethod::kScramSha256;
    }
  }
  std::optional<config::IpNet> address;
  if (!local) address = config::parse_ip(peer_host(peer_));
  const std::vector<config::IpNet> interfaces =
      local || !config::uses_interfaces(p.hba) ? std::vector<config::IpNet>{} : interface_networks();
  const config::HbaRequest request{.local = local,
                                   .ssl = tls,
                                   .address = address,
                                   .database = database_,
                                   .user = user_,
                                   .interfaces = interfaces};
  const config::HbaRule* rule = config::match_hba(p.hba, request);
  if (rule == nullptr) {
    fatal("28000", config::hba_no_match_message(peer_host(peer_), request));
    return std::nullopt;
  }
  spdlog::debug("event=hba_match client={} line={} method={}", id_, rule->line, config::to_string(rule->method));
  if (rule->method == config::HbaMethod::kReject) {
    fatal("28000", config::hba_reject_message(peer_host(peer_), request));
    return std::nullopt;
  }
  return rule->method;
}

void ClientConn::check_cert_login() {
  // As PostgreSQL's cert method: a verified client certificate whose CN is the user name; no password.
  const std::optional<std::string> cn = verified_peer_cn(ssl_);
  if (!cn) {
    fatal("28000", "connection requires a valid client certificate");
    return;
  }
  if (*cn != user_) {
    spdlog::info("event=client_cert_mismatch client={} user={} cn={}", id_, user_, log_value(*cn));
    fatal("28000", fmt::format("certificate authentication failed for user \"{}\"", user_));
    return;
  }
  note_credentials();
  auth_ok();
}

void ClientConn::begin_auth() {
  const std::optional<config::HbaMethod> method = access_method();
  if (!method) return;
  auth_ = daemon_.find_user(user_);
  if (auth_ != nullptr) {
    challenge(*method);
    return;
  }
  // Not in [users]: auth_query may know the user on the server (never for the admin console).
  const config::Database* db = database_ == "pooler" ? nullptr : daemon_.config().find_database(database_);
  if (db != nullptr) {
    state_ = State::kAuthLookup;
    sock_.set_reading(false);
    // close() cancels the lookup, so the callback never sees a closed (or freed) client.
    const config::HbaMethod m = *method;
    auto ticket = daemon_.lookup_user(*db, user_, [this, m](const LookupResult& r) { on_lookup(m, r); });
    if (ticket) {
      if (state_ == State::kAuthLookup) lookup_ticket_ = *ticket;
      return;
    }
    state_ = State::kStartup;
  }
  fatal("28000", fmt::format("role \"{}\" does not exist", user_));
}

void ClientConn::on_lookup(config::HbaMethod method, const LookupResult& result) {
  lookup_ticket_.reset();
  if (state_ != State::kAuthLookup) return;
  sock_.set_reading(true);
  switch (result.kind) {
    case LookupResult::Kind::kFailed:
      spdlog::error("event=auth_query_failed client={} user={} database={} error={}", id_, log_value(user_),
                    database_, log_value(result.error));
      fatal("08006", fmt::format("could not look up user \"{}\" on the server (auth_query): {}", user_,
                                 result.error));
      return;
    case LookupResult::Kind::kNotFound: {
      // Go through a whole exchange against a secret nobody knows, as PgBouncer does: from outside, an
      // unknown user looks exactly like a wrong password, so user names cannot be probed.
      // Under md5 the mock is an md5 secret, as PostgreSQL picks by password_encryption.
      mock_auth_ = true;
      std::string random(32, '\0');
      RAND_bytes(reinterpret_cast<unsigned char*>(random.data()), static_cast<int>(random.size()));
      looked_up_ = std::make_unique<UserAuth>(make_user_auth(
          user_, method == config::HbaMethod::kMd5
                     ? protocol::md5_secret(random, user_)
                     : protocol::format_scram_secret(protocol::make_scram_secret(random, random.substr(0, 16)))));
      break;
    }
    case LookupResult::Kind::kFound: {
      looked_up_ = std::make_unique<UserAuth>(make_user_auth(user_, result.secret));
      break;
    }
  }
  auth_ = looked_up_.get();
  spdlog::debug("event=auth_query_user client={} user={} found={}", id_, log_value(user_), !mock_auth_);
  challenge(mock_auth_ && (method == config::HbaMethod::kTrust || method == config::HbaMethod::kCert)
                ? config::HbaMethod::kScramSha256
                : method);
}

void ClientConn::note_credentials() {
  if (auth_ == nullptr || mock_auth_) return;
  // A plain password in [users] logs in through libpq as before.
  if (looked_up_ == nullptr && auth_->kind == UserAuth::Kind::kPlain) return;
  if (scram_ != nullptr && scram_->authenticated() && auth_->scram) {
    proven_ = protocol::ScramKeys{scram_->client_key(), auth_->scram->server_key};
  } else if (auth_->kind == UserAuth::Kind::kMd5Secret) {
    proven_ = protocol::Md5Secret{auth_->password};
  } else if (auth_->kind == UserAuth::Kind::kPlain) {
    proven_ = protocol::PlainPassword{auth_->password};
  }
}

void ClientConn::challenge(config::HbaMethod method) {
  state_ = State::kAuth;
  if (method == config::HbaMethod::kCert) {
    check_cert_login();
    return;
  }
  const config::AuthType auth_type = method == config::HbaMethod::kTrust ? config::AuthType::kTrust
                                     : method == config::HbaMethod::kMd5 ? config::AuthType::kMd5
                                                                         : config::AuthType::kScramSha256;
  std::string out;
  switch (auth_type) {
    case config::AuthType::kTrust:
      note_credentials();
      auth_ok();
      return;
    case config::AuthType::kMd5:
      // As PostgreSQL does: a user whose stored secret is SCRAM is asked for SCRAM even under md5.
      if (auth_->kind != UserAuth::Kind::kScramSecret) {
        md5_salt_ = protocol::random_salt4();
        auth_step_ = AuthStep::kMd5;
        protocol::write_authentication_md5_password(out, md5_salt_);
        send_and_flush(out);
        return;
      }
      [[fallthrough]];
    case config::AuthType::kScramSha256:
      auth_step_ = AuthStep::kSaslInit;
      protocol::write_authentication_sasl(out, {protocol::kScramSha256});
      send_and_flush(out);
      return;
  }
}

void ClientConn::handle_auth_bytes(std::string_view data) {
  in_.append(data);
  while (state_ == State::kAuth && !in_.empty()) {
    auto frame = protocol::decode_frame(in_, kMaxAuthMessage);
    if (!frame) {
      fatal(frame.error().sqlstate, frame.error().message);
      return;
    }
    if (!frame->has_value()) return;
    char type = (*frame)->type;
    std::string body((*frame)->body);
    in_.erase(0, (*frame)->size);
    handle_auth_message(type, body);
  }
}

void ClientConn::handle_auth_message(char type, std::string_view body) {
  if (type == 'X') {
    close();
    return;
  }
  if (type != 'p') {
    fatal("08P01", fmt::format("expected password response, got message type '{}'", type));
    return;
  }
  auto auth_failed = [this] {
    fatal("28P01", fmt::format("password authentication failed for user \"{}\"", user_));
  };
  switch (auth_step_) {
    case AuthStep::kMd5: {
      auto pw = protocol::parse_password_message(body);
      if (!pw) {
        fatal(pw.error().sqlstate, pw.error().message);
        return;
      }
      if (mock_auth_ || !protocol::md5_verify(auth_->password, user_, md5_salt_, *pw)) {
        auth_failed();
        return;
      }
      note_credentials();
      auth_ok();
      return;
    }
    case AuthStep::kSaslInit: {
      auto init = protocol::parse_sasl_initial_response(body);
      if (!init) {
        fatal(init.error().sqlstate, init.error().message);
        return;
      }
      if (init->mechanism != protocol::kScramSha256) {
        fatal("28000", "client selected an invalid SASL authentication mechanism");
        return;
      }
      if (!auth_->scram) {
        // An md5 secret cannot verify SCRAM; PostgreSQL fails such logins the same way.
        spdlog::warn("event=auth_impossible user={} reason=\"md5 secret cannot be used for SCRAM\"", user_);
        auth_failed();
        return;
      }
      scram_ = std::make_unique<protocol::ScramServer>(*auth_->scram);
      auto first = scram_->handle_client_first(init->data);
      if (!first) {
        fatal(first.error().sqlstate, first.error().message);
        return;
      }
      std::string out;
      protocol::write_authentication_sasl_continue(out, *first);
      send_and_flush(out);
      auth_step_ = AuthStep::kSaslFinal;
      return;
    }
    case AuthStep::kSaslFinal: {
      auto resp = protocol::parse_sasl_response(body);
      if (!resp) {
        fatal(resp.error().sqlstate, resp.error().message);
        return;
      }
      auto final_msg = scram_->handle_client_final(*resp);
      if (!final_msg || mock_auth_) {
        if (mock_auth_ || final_msg.error().sqlstate == "28P01") {
          auth_failed();
        } else {
          fatal(final_msg.error().sqlstate, final_msg.error().message);
        }
        return;
      }
      std::string out;
      protocol::write_authentication_sasl_final(out, *final_msg);
      send_and_flush(out);
      if (state_ == State::kClosed) return;
      note_credentials();
      auth_ok();
      return;
    }
    case AuthStep::kNone:
      fatal("08P01", "unexpected password message");
      return;
  }
}

void ClientConn::auth_ok() {
  scram_.reset();
  auth_step_ = AuthStep::kNone;
  if (database_ == "pooler") {
    admin_login();
    return;
  }
  const config::Database* db = daemon_.config().find_database(database_);
  if (db == nullptr) {
    fatal("3D000", fmt::format("database \"{}\" does not exist", database_));
    return;
  }
  if (daemon_.database_disabled(database_)) {
    // PostgreSQL's words for a database with datallowconn = false.
    fatal("55000", fmt::format("database \"{}\" is not currently accepting connections", database_),
          "It was disabled with DISABLE on the pooler's admin console; ENABLE allows connections again.");
    return;
  }
  // Credentials proven just now serve the pool's own logins, unless the database logs in as a fixed user.
  std::optional<protocol::LoginCredentials> own_login;
  if (proven_ && !db->user) own_login = std::move(proven_);
  proven_.reset();
  pool_ = &daemon_.pool_for(*db, user_, std::move(own_login));
  interpret_ = pool_->mode() == config::PoolMode::kTransaction;
  prepared_ = interpret_ && pool_->database().max_prepared_statements > 0;
  std::string msgs;
  protocol::write_authentication_ok(msgs);
  daemon_.register_cancel_key(this, cancel_pid_, cancel_key_);
  if (pool_->mode() == config::PoolMode::kTransaction && !pool_->login_params().empty()) {
    // Transaction mode: the pool already knows what its servers report; no server connection is needed
    // until the first query, when the client's own parameters are applied. One write for the whole login.
    for (const auto& [k, v] : pool_->login_params()) {
      const std::string* mine = nullptr;
      for (const auto& [ck, cv] : params_) {
        if (iequals(ck, k)) mine = &cv;
      }
      protocol::write_parameter_status(msgs, k, mine != nullptr ? *mine : v);
    }
    protocol::write_backend_key_data(msgs, cancel_pid_, cancel_key_);
    protocol::write_ready_for_query(msgs, 'I');
    send_and_flush(msgs);
    if (state_ == State::kClosed) return;
    state_ = State::kReady;
    spdlog::info("event=login client={} peer={} user={} database={} pool_mode=transaction", id_, peer_, user_,
                 database_);
    if (!in_.empty()) {
      std::string held;
      held.swap(in_);
      need_server(held);
    }
    return;
  }
  send_and_flush(msgs);
  if (state_ == State::kClosed) return;
  // The login needs one server connection: its ParameterStatus values are what the client is told.
  state_ = State::kLoginWait;
  sock_.set_reading(false);
  pool_->request(this);
}

// ---- admin console ----

void ClientConn::admin_login() {
  const auto& admins = daemon_.config().pooler.admin_users;
  if (std::find(admins.begin(), admins.end(), user_) == admins.end()) {
    fatal("42501", fmt::format("permission denied: user \"{}\" is not in admin_users", user_));
    return;
  }
  admin_ = true;
  std::string out;
  protocol::write_authentication_ok(out);
  // What psql needs to talk to us; the console is not a PostgreSQL server, so no other parameters.
  protocol::write_parameter_status(out, "server_version", "15.0 (pooler " POOLER_VERSION ")");
  protocol::write_parameter_status(out, "server_encoding", "UTF8");
  protocol::write_parameter_status(out, "client_encoding", "UTF8");
  protocol::write_parameter_status(out, "DateStyle", "ISO, MDY");
  protocol::write_parameter_status(out, "integer_datetimes", "on");
  protocol::write_parameter_status(out, "standard_conforming_strings", "on");
  protocol::write_parameter_status(out, "is_superuser", "off");
  protocol::write_backend_key_data(out, 0, 0);
  protocol::write_ready_for_query(out, 'I');
  state_ = State::kAdmin;
  spdlog::info("event=admin_login client={} peer={} user={}", id_, peer_, user_);
  send_and_flush(out);
  if (state_ == State::kClosed) return;
  sock_.set_reading(true);
  if (!in_.empty()) {
    std::string held;
    held.swap(in_);
    handle_admin_bytes(held);
  }
}

void ClientConn::handle_admin_bytes(std::string_view data) {
  in_.append(data);
  std::size_t pos = 0;
  std::string out;
  while (state_ == State::kAdmin) {
    auto frame = protocol::decode_frame(std::string_view(in_).substr(pos), kMaxAuthMessage);
    if (!frame) {
      fatal(frame.error().sqlstate, frame.error().message);
      return;
    }
    if (!frame->has_value()) break;
    const protocol::Frame f = **frame;
    pos += f.size;
    if (f.type == 'X') {
      send_and_flush(out);
      close();
      return;
    }
    if (f.type == 'Q') {
      std::string_view sql = f.body;
      if (!sql.empty() && sql.back() == '\0') sql.remove_suffix(1);
      spdlog::info("event=admin_command client={} user={} command={}", id_, user_, log_value(sql));
      execute_admin(sql, daemon_, out);
      protocol::write_ready_for_query(out, 'I');
    } else if (f.type == 'S') {
      protocol::write_ready_for_query(out, 'I');
    } else if (f.type == 'P' || f.type == 'B' || f.type == 'D' || f.type == 'E' || f.type == 'C' ||
               f.type == 'H') {
      // Reported once per message; the client's Sync then gets its ReadyForQuery.
      protocol::write_error_response(
          out, protocol::ErrorFields{protocol::Severity::kError, "0A000",
                                     "the admin console only supports the simple query protocol", {}, {}});
    } else {
      send_and_flush(out);
      fatal("08P01", fmt::format("unexpected message type '{}' on the admin console", f.type));
      return;
    }
  }
  in_.erase(0, pos);
  if (state_ == State::kAdmin && !out.empty()) send_and_flush(out);
}

std::string ClientConn::application_name() const {
  for (const auto& [k, v] : params_) {
    if (iequals(k, "application_name")) return v;
  }
  return {};
}

// ---- server assignment ----

void ClientConn::on_server_assigned(ServerConn* s) {
  if (state_ == State::kClosed) {
    pool_->release(s, {});
    return;
  }
  server_ = s;
  if (state_ == State::kLoginWait) {
    state_ = State::kLoginSync;
    apply_params_then(s, &ClientConn::after_login_server);
  } else if (state_ == State::kWaitServer) {
    state_ = State::kSync;
    apply_params_then(s, &ClientConn::link_for_transaction);
  } else {
    // Not expected; give it back untouched.
    server_ = nullptr;
    pool_->release(s, {});
  }
}

void ClientConn::on_checkout_failed(const protocol::ErrorFields& e) {
  if (state_ == State::kLoginWait) {
    fatal(e.sqlstate, e.message, e.detail);
    return;
  }
  if (state_ == State::kWaitServer) {
    // The session stays usable: answer the held request with the error and drop it.
    std::string out;
    protocol::write_error_response(out, e);
    protocol::write_ready_for_query(out, 'I');
    in_.clear();
    have_view_ = false;
    unsynced_ = false;
    scanner_.reset();
    assembling_ = false;
    skip_to_sync_ = false;
    msg_.clear();
    state_ = State::kReady;
    send_and_flush(out);
    if (state_ != State::kClosed) sock_.set_reading(true);
  }
}

std::vector<std::string> ClientConn::param_sync_sql(const ServerConn& s) const {
  std::vector<std::string> sql;
  for (const auto& [k, v] : params_) {
    const std::string* have = s.param(k);
    if (have == nullptr) have = s.applied(k);  // not reported by the server (e.g. search_path)
    if (have != nullptr && *have == v) continue;
    // set_config parses the value as the server parses a startup option (search_path "a,b" is two
    // schemas), where SET with a quoted literal would make it one.
    sql.push_back(fmt::format("pg_catalog.set_config({}, {}, false)", quote_literal(k), quote_literal(v)));
  }
  // A value another client left that this one never asked for goes back to the server's default.
  for (const auto& [k, v] : s.applied_all()) {
    bool mine = std::any_of(params_.begin(), params_.end(), [&](const auto& kv) { return iequals(kv.first, k); });
    if (mine) continue;
    sql.push_back(fmt::format(
        "pg_catalog.set_config({0}, (SELECT reset_val FROM pg_catalog.pg_settings WHERE name = {0}), false)",
        quote_literal(k)));
  }
  return sql;
}

void ClientConn::apply_params_then(ServerConn* s, void (ClientConn::*next)(ServerConn*)) {
  std::vector<std::string> sql = param_sync_sql(*s);
  if (sql.empty()) {
    (this->*next)(s);
    return;
  }
  if (have_view_) {
    // The answer will come later: the read buffer is reused by then.
    in_.append(held_view_);
    have_view_ = false;
  }
  std::string batch = "SELECT ";
  for (std::size_t i = 0; i < sql.size(); ++i) {
    if (i > 0) batch += ", ";
    batch += sql[i];
  }
  // One Query for all: one round trip. The server reports the new values as ParameterStatus.
  auto params = params_;
  s->run_internal({batch}, [this, next, params](ServerConn* srv, const InternalResult& r) {
    if (state_ == State::kClosed || server_ != srv) return;
    if (!r.ok) {
      std::string sqlstate = r.sqlstate.empty() ? "08006" : r.sqlstate;
      if (srv->state() == ServerConn::State::kClosed) {
        server_ = nullptr;
        fatal("08006", fmt::format("server connection lost while applying client parameters: {}", r.message));
      } else {
        fatal(sqlstate, r.message);
      }
      return;
    }
    // Remember non-reported values (search_path, ...) as set, so the next checkout can compare; the ones
    // put back to their defaults are no longer anyone's.
    std::vector<std::string> reset;
    for (const auto& [k, v] : srv->applied_all()) {
      bool mine = std::any_of(params.begin(), params.end(), [&](const auto& kv) { return iequals(kv.first, k); });
      if (!mine) reset.push_back(k);
    }
    for (const auto& k : reset) srv->forget_applied(k);
    for (const auto& [k, v] : params) {
      if (srv->param(k) == nullptr) srv->remember_applied(k, v);
    }
    (this->*next)(srv);
  });
}

void ClientConn::after_login_server(ServerConn* s) {
  std::string out;
  for (const auto& [k, v] : s->params()) protocol::write_parameter_status(out, k, v);
  protocol::write_backend_key_data(out, cancel_pid_, cancel_key_);
  protocol::write_ready_for_query(out, 'I');
  send_and_flush(out);
  if (state_ == State::kClosed) return;
  spdlog::info("event=login client={} peer={} user={} database={} pool_mode={}", id_, peer_, user_, database_,
               pool_->mode() == config::PoolMode::kSession ? "session" : "transaction");
  if (pool_->mode() == config::PoolMode::kSession) {
    state_ = State::kLinked;
    s->link(this);
  } else {
    capture_params(*s);
    state_ = State::kReady;
    server_ = nullptr;
    pool_->release(s, {});
  }
  sock_.set_reading(true);
  if (!in_.empty()) {
    std::string held;
    held.swap(in_);
    if (state_ == State::kLinked) {
      relay_to_server(held);
    } else {
      need_server(held);
    }
  }
}

// ---- relay ----

void ClientConn::relay_to_server(std::string_view data) {
  if (idle_tx_armed_) stop_idle_tx_timer();
  if (stalled_ || (server_ != nullptr && server_->cancel_in_flight())) {
    // A cancel (query_timeout) is still on its way to the server: a request sent now could be the one it
    // hits; or the relay waits for the server's answers (stalled_). Held until resume_relay().
    in_.append(data);
    sock_.set_reading(false);
    return;
  }
  if (interpret_) {
    relay_interpreting(data);
    return;
  }
  while (!data.empty() && state_ == State::kLinked && server_ != nullptr) {
    RelayHandler h{*this};
    auto res = scanner_.scan(data, h);
    if (!res) {
      fatal(res.error().sqlstate, res.error().message);
      return;
    }
    std::string_view chunk = data.substr(0, res->consumed);
    data.remove_prefix(res->consumed);
    ServerConn* s = server_;
    if (!chunk.empty() && !s->send_from_client(chunk, h.requests)) return;  // server lost: we were told
    if (h.terminate) {
      terminated_ = true;
      close();
      return;
    }
  }
  // Backpressure: while the server has a large unsent backlog, stop reading the client.
  if (server_ != nullptr && state_ == State::kLinked && server_->backlog() > kServerHighWater) {
    sock_.set_reading(false);
    server_->notify_drained_to(this);
  }
}

void ClientConn::need_server(std::string_view data) {
  if (data.empty()) return;
  if (data[0] == 'X' && in_.empty() && !assembling_) {
    // A Terminate while idle needs no server.
    terminated_ = true;
    close();
    return;
  }
  state_ = State::kWaitServer;
  if (!in_.empty()) {
    in_.append(data);
  } else {
    // Usually the pool answers at once: the bytes are relayed straight from the read buffer, no copy, and
    // reading never pauses (each pause/resume costs two epoll_ctl calls in libuv).
    held_view_ = data;
    have_view_ = true;
  }
  pool_->request(this);
  if (have_view_) {
    in_.append(held_view_);
    have_view_ = false;
  }
  if (state_ == State::kWaitServer || state_ == State::kSync) sock_.set_reading(false);
}

void ClientConn::link_for_transaction(ServerConn* s) {
  state_ = State::kLinked;
  s->link(this);
  sock_.set_reading(true);
  if (have_view_) {
    have_view_ = false;
    relay_to_server(held_view_);
    return;
  }
  std::string held;
  held.swap(in_);
  relay_to_server(held);
}

void ClientConn::on_server_ready(char tx_status) {
  if (state_ != State::kLinked || server_ == nullptr) return;
  ServerConn* s = server_;
  // Between transactions: the end of the last outstanding request, between messages, outside a transaction.
  // (A message the client is half-way through sending has not reached the server: it waits for the next
  // checkout.)
  bool quiet = s->outstanding() == 0 && !unsynced_ && scanner_.at_boundary() && !s->in_copy() && s->owed().empty() &&
               !s->cancel_in_flight();
  if (tx_status != 'I') {
    // Idle inside a transaction: the client holds the server connection until it goes on.
    if (quiet && !assembling_) arm_idle_tx_timer();
    return;
  }
  if (!quiet) return;
  if (pool_->mode() == config::PoolMode::kTransaction) {
    if (search_path_changed_) {
      refresh_search_path_then_release();
    } else {
      release_server();
    }
  } else {
    leave_if_asked();
  }
}

bool ClientConn::leave_if_asked() {
  // A draining daemon, or a database/user removed by reload, lets clients finish their transaction first.
  if (!daemon_.shutting_down() && !pool_->retired()) return false;
  fatal("57P01", daemon_.shutting_down()
                     ? "terminating connection due to administrator command"
                     : fmt::format("database \"{}\" or user \"{}\" was removed from the pooler configuration",
                                   database_, user_));
  return true;
}

void ClientConn::on_pool_retired() {
  if (state_ == State::kReady) {
    leave_if_asked();
  } else if (state_ == State::kLinked && server_ != nullptr && server_->tx_status() == 'I' && server_->is_clean() &&
             !unsynced_ && scanner_.at_boundary()) {
    leave_if_asked();
  }
}

void ClientConn::release_server() {
  ServerConn* s = server_;
  if (s == nullptr) return;
  stop_idle_tx_timer();
  capture_params(*s);
  server_ = nullptr;
  s->unlink();
  if (state_ == State::kLinked) state_ = State::kReady;
  pool_->release(s, PoolRuntime::ReleaseInfo{scanner_.at_boundary(), unsynced_});
  if (state_ == State::kReady) leave_if_asked();
}

void ClientConn::refresh_search_path_then_release() {
  search_path_changed_ = false;
  ServerConn* s = server_;
  // The server stays this client's, unlinked, while the pooler asks it; the client's next bytes wait.
  state_ = State::kSync;
  sock_.set_reading(false);
  s->unlink();
  s->run_internal({"SELECT pg_catalog.current_setting('search_path')"}, [this](ServerConn* srv,
                                                                            const InternalResult& r) {
    if (state_ == State::kClosed || server_ != srv) return;
    if (r.ok && r.value) {
      set_kv(params_, "search_path", *r.value);
      srv->remember_applied("search_path", *r.value);
    }
    state_ = State::kLinked;
    release_server();
    if (state_ != State::kReady) return;
    sock_.set_reading(true);
    if (!in_.empty()) {
      std::string held;
      held.swap(in_);
      need_server(held);
    }
  });
}

void ClientConn::capture_params(const ServerConn& s) {
  // The client's view follows what the server reported while linked (SET outside a transaction).
  for (auto& [k, v] : params_) {
    if (const std::string* now = s.param(k)) v = *now;
  }
}

void ClientConn::resume_relay() {
  stalled_ = false;
  if (state_ != State::kLinked || server_ == nullptr) return;
  sock_.set_reading(true);
  if (!in_.empty()) {
    std::string held;
    held.swap(in_);
    relay_to_server(held);
  }
  if (state_ == State::kLinked && server_ != nullptr) on_server_ready(server_->tx_status());
}

void ClientConn::on_server_lost(const std::string& reason) {
  server_ = nullptr;
  if (state_ == State::kClosed) return;
  fatal("08006", fmt::format("server connection lost: {}", reason));
}

// ---- transaction mode: the interpreting relay ----

void ClientConn::relay_interpreting(std::string_view data) {
  while (!data.empty() && state_ == State::kLinked && server_ != nullptr) {
    if (assembling_) {
      if (!assemble(data)) break;  // needs more bytes (data is used up), or the client was closed
      assembling_ = false;
      if (!handle_message(msg_)) {
        // Stalled: the message and everything after it wait in in_.
        in_.assign(msg_);
        in_.append(data);
        msg_.clear();
        break;
      }
      if (msg_.capacity() > kKeepMessageBuffer) {
        std::string().swap(msg_);
      } else {
        msg_.clear();
      }
      continue;
    }
    InterpretHandler h{*this};
    auto res = scanner_.scan(data, h);
    if (!res) {
      fatal(res.error().sqlstate, res.error().message);
      return;
    }
    forward(data.substr(0, res->consumed), h.requests);
    data.remove_prefix(res->consumed);
    if (!h.stop || state_ != State::kLinked || server_ == nullptr) continue;
    // Usually the whole message is in this read: look at it where it lies.
    auto frame = protocol::decode_frame(data, daemon_.config().pooler.max_message_size);
    if (!frame) {
      fatal(frame.error().sqlstate, frame.error().message);
      return;
    }
    if (!frame->has_value()) {
      assembling_ = true;
      continue;
    }
    std::string_view whole = data.substr(0, (*frame)->size);
    if (!handle_message(whole)) {
      in_.assign(data);
      break;
    }
    data.remove_prefix(whole.size());
  }
  if (stalled_ && state_ == State::kLinked && server_ != nullptr) {
    // Until the server has answered everything sent so far; a Flush makes it send what it holds back.
    out_.append("H\0\0\0\4", 5);
    sock_.set_reading(false);
    server_->notify_when_settled(this);
  }
  if (state_ == State::kClosed) return;
  flush_out();
  if (state_ != State::kLinked || server_ == nullptr) return;
  // Answers the pooler made up that are due now (nothing owed before them) go out at once.
  if (server_->deliver_made_up() && state_ == State::kLinked && server_ != nullptr) {
    on_server_ready(server_->tx_status());
  }
  if (server_ != nullptr && state_ == State::kLinked && server_->backlog() > kServerHighWater) {
    sock_.set_reading(false);
    server_->notify_drained_to(this);
  }
  // Extended-protocol messages without their Sync hold the server connection as an open transaction does.
  if (unsynced_ && state_ == State::kLinked && server_ != nullptr) arm_idle_tx_timer();
}

bool ClientConn::assemble(std::string_view& data) {
  const std::size_t header = protocol::kFrameHeaderSize;
  if (msg_.size() < header) {
    std::size_t take = std::min(header - msg_.size(), data.size());
    msg_.append(data.substr(0, take));
    data.remove_prefix(take);
    if (msg_.size() < header) return false;
  }
  auto frame = protocol::decode_frame(msg_, daemon_.config().pooler.max_message_size);
  if (!frame) {
    fatal(frame.error().sqlstate, frame.error().message);
    return false;
  }
  if (frame->has_value()) return true;
  auto b = [this](int i) { return static_cast<std::size_t>(static_cast<unsigned char>(msg_[i])); };
  std::size_t need = 1 + ((b(1) << 24) | (b(2) << 16) | (b(3) << 8) | b(4));
  std::size_t take = std::min(need - msg_.size(), data.size());
  msg_.append(data.substr(0, take));
  data.remove_prefix(take);
  return msg_.size() == need;
}

bool ClientConn::handle_message(std::string_view msg) {
  char type = msg[0];
  std::string_view body = msg.substr(protocol::kFrameHeaderSize);
  ServerConn& s = *server_;
  if (skip_to_sync_ && type != 'X') return true;  // as the server would after an error: skipped
  switch (type) {
    case 'X':
      flush_out();
      terminated_ = true;
      close();
      return true;
    case 'Q':
      handle_query(msg, body);
      return true;
    case 'P': {
      std::string_view rest = body;
      auto name = take_cstring(rest);
      auto sql = name ? take_cstring(rest) : std::nullopt;
      if (sql && classify_query(*sql).kind == QueryCommand::Kind::kListen) {
        unsynced_ = true;
        refuse_listen(/*extended=*/true);
        return true;
      }
      break;
    }
    default:
      break;
  }
  unsynced_ = true;
  if (prepared_) return handle_statement_message(type, msg, body);
  forward(msg);
  switch (type) {
    case 'P':
      s.owed().push(OwedAnswers::Kind::kParse, s.statements());
      break;
    case 'B':
      s.owed().push(OwedAnswers::Kind::kBind, s.statements());
      break;
    case 'D':
      s.owed().push(OwedAnswers::Kind::kDescribe, s.statements());
      break;
    default:
      s.owed().push(OwedAnswers::Kind::kClose, s.statements());
      break;
  }
  return true;
}

void ClientConn::handle_query(std::string_view msg, std::string_view sql) {
  ServerConn& s = *server_;
  // A simple Query replaces the unnamed statement and portal.
  fake_statement_tag_.clear();
  fake_portal_tag_.clear();
  QueryCommand cmd = classify_query(sql);
  switch (cmd.kind) {
    case QueryCommand::Kind::kListen:
      refuse_listen(/*extended=*/false);
      return;
    case QueryCommand::Kind::kDeallocate:
      if (prepared_ && statements_.erase(cmd.name) > 0) {
        // The client's name for one of the pool's statements: only the name goes away.
        s.owed().push_made_up(command_complete("DEALLOCATE"), /*ready=*/true, s.statements());
        return;
      }
      break;
    case QueryCommand::Kind::kDeallocateAll:
      if (prepared_) {
        statements_.clear();
        s.owed().push_made_up(command_complete("DEALLOCATE ALL"), /*ready=*/true, s.statements());
        return;
      }
      break;
    case QueryCommand::Kind::kDiscardAll:
      search_path_changed_ = true;
      if (prepared_) {
        // Runs on the server and drops everything prepared there: put back if it fails (e.g. inside a
        // transaction block).
        statements_.clear();
        OwedAnswers::Entry e = OwedAnswers::Entry::of(OwedAnswers::Kind::kQuery);
        e.dropped = s.statements().take_all();
        forward(msg, 1);
        s.owed().push(std::move(e), s.statements());
        return;
      }
      break;
    case QueryCommand::Kind::kSetSearchPath:
      // search_path is not reported by the server: read back at the end of the transaction and re-applied
      // wherever this client goes next.
      search_path_changed_ = true;
      break;
    case QueryCommand::Kind::kOther:
      break;
  }
  forward(msg, 1);
  s.owed().push(OwedAnswers::Kind::kQuery, s.statements());
}

void ClientConn::refuse_listen(bool extended) {
  // A LISTEN would stay on a server connection other clients get next; its notifications would reach
  // whoever holds that connection. Refused, and the session goes on.
  ServerConn& s = *server_;
  std::string err;
  protocol::write_error_response(
      err, protocol::ErrorFields{protocol::Severity::kError, "0A000",
                                 "LISTEN is not supported in transaction pool mode",
                                 "In transaction mode each transaction may run on a different server connection, "
                                 "so a LISTEN would not stay with this session.",
                                 "Listen through a database with pool_mode = \"session\"; NOTIFY works in either "
                                 "mode."});
  s.owed().push_made_up(std::move(err), /*ready=*/!extended, s.statements());
  if (extended) skip_to_sync_ = true;
}

bool ClientConn::handle_statement_message(char type, std::string_view msg, std::string_view body) {
  ServerConn& s = *server_;
  OwedAnswers& owed = s.owed();
  ServerStatements& cache = s.statements();
  // Names whose Parse failed (or was skipped after an error) are free again, as on the server.
  for (auto& [name, st] : owed.take_failed_names()) {
    auto it = statements_.find(name);
    if (it != statements_.end() && it->second == st) statements_.erase(it);
  }
  auto lookup = [this](std::string_view name) -> StatementRef {
    if (name.empty()) return nullptr;
    auto it = statements_.find(name);
    return it == statements_.end() ? nullptr : it->second;
  };
  std::string_view rest = body;
  switch (type) {
    case 'P': {
      auto name = take_cstring(rest);
      if (!name) break;
      if (name->empty()) {
        fake_statement_tag_.clear();
        std::string_view tail = rest;
        auto sql = take_cstring(tail);
        QueryCommand cmd = sql ? classify_query(*sql) : QueryCommand{};
        if (cmd.kind == QueryCommand::Kind::kDeallocateAll ||
            (cmd.kind == QueryCommand::Kind::kDeallocate && statements_.contains(cmd.name))) {
          if (cmd.kind == QueryCommand::Kind::kDeallocateAll) {
            statements_.clear();
            fake_statement_tag_ = "DEALLOCATE ALL";
          } else {
            statements_.erase(cmd.name);
            fake_statement_tag_ = "DEALLOCATE";
          }
          owed.push_made_up(std::string(kParseComplete), /*ready=*/false, cache);
          return true;
        }
        break;  // the unnamed statement: as sent
      }
      if (statements_.contains(*name) && owed.size() != 0) {
        // Whether the name is taken depends on answers still to come (its Parse may fail): decided once
        // they are in.
        stalled_ = true;
        return false;
      }
      if (statements_.contains(*name)) {
        // As PostgreSQL: the first statement stays, and the server skips to the Sync.
        std::string err;
        protocol::write_error_response(
            err, protocol::ErrorFields{protocol::Severity::kError, "42P05",
                                       fmt::format("prepared statement \"{}\" already exists", *name), {}, {}});
        owed.push_made_up(std::move(err), /*ready=*/false, cache);
        skip_to_sync_ = true;
        return true;
      }
      StatementRef st = pool_->statements().intern(rest);
      statements_.emplace(std::string(*name), st);
      use_statement(st, *name, /*client_parse=*/true);
      return true;
    }
    case 'B': {
      auto portal = take_cstring(rest);
      if (!portal) break;
      auto name = take_cstring(rest);
      if (!name) break;
      if (portal->empty()) fake_portal_tag_.clear();
      if (name->empty() && !fake_statement_tag_.empty()) {
        if (portal->empty()) fake_portal_tag_ = fake_statement_tag_;
        owed.push_made_up(std::string("2\0\0\0\4", 5), /*ready=*/false, cache);
        return true;
      }
      StatementRef st = lookup(*name);
      if (st == nullptr) break;
      use_statement(st, {}, /*client_parse=*/false);
      std::size_t start = protocol::begin_message(out_, 'B');
      protocol::append_cstring(out_, *portal);
      protocol::append_cstring(out_, st->server_name);
      out_.append(rest);
      protocol::finish_message(out_, start);
      owed.push(OwedAnswers::Kind::kBind, cache);
      return true;
    }
    case 'E': {
      auto portal = take_cstring(rest);
      if (portal && portal->empty() && !fake_portal_tag_.empty()) {
        owed.push_made_up(command_complete(fake_portal_tag_), /*ready=*/false, cache);
        return true;
      }
      forward(msg);
      owed.push(OwedAnswers::Kind::kExecute, cache);
      return true;
    }
    case 'D':
    case 'C': {
      if (rest.empty()) break;
      char what = rest[0];
      rest.remove_prefix(1);
      auto name = take_cstring(rest);
      if (name && name->empty()) {
        // The unnamed statement or portal of a DEALLOCATE answered here.
        const std::string& tag = what == 'S' ? fake_statement_tag_ : fake_portal_tag_;
        if (tag.empty()) break;
        std::string answer;
        if (type == 'C') {
          answer = kCloseComplete;
          (what == 'S' ? fake_statement_tag_ : fake_portal_tag_).clear();
        } else {
          // No parameters (for a statement), and no rows.
          if (what == 'S') answer.append("t\0\0\0\6\0\0", 7);
          answer.append("n\0\0\0\4", 5);
        }
        owed.push_made_up(std::move(answer), /*ready=*/false, cache);
        return true;
      }
      if (what != 'S') break;  // a named portal
      StatementRef st = name ? lookup(*name) : nullptr;
      if (st == nullptr) break;
      if (type == 'C') {
        // The client lets go of its name; the server keeps the statement for whoever uses it next.
        statements_.erase(std::string(*name));
        owed.push_made_up(std::string(kCloseComplete), /*ready=*/false, cache);
        return true;
      }
      use_statement(st, {}, /*client_parse=*/false);
      std::size_t start = protocol::begin_message(out_, 'D');
      out_ += 'S';
      protocol::append_cstring(out_, st->server_name);
      protocol::finish_message(out_, start);
      owed.push(OwedAnswers::Kind::kDescribe, cache);
      return true;
    }
    default:
      break;
  }
  // Not one of the client's named statements: as the client sent it.
  forward(msg);
  static constexpr OwedAnswers::Kind kAnswer[] = {OwedAnswers::Kind::kParse, OwedAnswers::Kind::kBind,
                                                  OwedAnswers::Kind::kDescribe, OwedAnswers::Kind::kClose,
                                                  OwedAnswers::Kind::kExecute};
  std::size_t i = type == 'P' ? 0 : type == 'B' ? 1 : type == 'D' ? 2 : type == 'C' ? 3 : 4;
  owed.push(kAnswer[i], cache);
  return true;
}

void ClientConn::use_statement(const StatementRef& st, std::string_view client_name, bool client_parse) {
  ServerConn& s = *server_;
  OwedAnswers& owed = s.owed();
  ServerStatements& cache = s.statements();
  auto write_close = [this](const Statement& victim) {
    std::size_t start = protocol::begin_message(out_, 'C');
    out_ += 'S';
    protocol::append_cstring(out_, victim.server_name);
    protocol::finish_message(out_, start);
  };
  const std::uint64_t parse = cache.next_parse();
  switch (cache.state(st.get(), owed.group())) {
    case ServerStatements::State::kReady: {
      cache.touch(st.get());
      if (!client_parse) return;
      pool_->metrics().statements_reused.Increment();
      OwedAnswers::Entry e = OwedAnswers::Entry::of(OwedAnswers::Kind::kMadeUp, st);
      e.bytes = kParseComplete;
      e.client_name = client_name;
      owed.push(std::move(e), cache);
      return;
    }
    case ServerStatements::State::kStale:
      // It may or may not exist there: closing a statement that does not exist is no error, so Close then
      // Parse is right either way.
      write_close(*st);
      owed.push(OwedAnswers::Kind::kHiddenClose, cache, st);
      cache.reparse(st.get(), parse, owed.group());
      break;
    case ServerStatements::State::kAbsent:
      if (StatementRef victim = cache.add(st, parse, owed.group())) {
        write_close(*victim);
        owed.push(OwedAnswers::Kind::kHiddenClose, cache, std::move(victim));
        pool_->metrics().statements_evicted.Increment();
      }
      break;
  }
  std::size_t start = protocol::begin_message(out_, 'P');
  protocol::append_cstring(out_, st->server_name);
  out_.append(st->parse_tail);
  protocol::finish_message(out_, start);
  OwedAnswers::Entry e =
      OwedAnswers::Entry::of(client_parse ? OwedAnswers::Kind::kParse : OwedAnswers::Kind::kHiddenParse, st, parse);
  e.client_name = client_name;
  owed.push(std::move(e), cache);
  pool_->metrics().statements_prepared.Increment();
}

void ClientConn::forward(std::string_view bytes, int requests) {
  out_requests_ += requests;
  if (bytes.empty() || server_ == nullptr) return;
  if (out_.empty() && bytes.size() >= kDirectSend) {
    // Bulk (COPY data): straight from the read buffer.
    int n = std::exchange(out_requests_, 0);
    server_->send_from_client(bytes, n);
    return;
  }
  out_.append(bytes);
  if (out_.size() >= kOutFlush) flush_out();
}

void ClientConn::flush_out() {
  ServerConn* s = server_;
  if (s == nullptr || out_.empty()) {
    out_.clear();
    out_requests_ = 0;
    return;
  }
  int n = std::exchange(out_requests_, 0);
  std::string out;
  out.swap(out_);
  // send_from_client may lose the server and tell us (closing this client): out_ is already empty then.
  s->send_from_client(out, n);
  if (out_.empty()) {
    out.clear();
    out_.swap(out);  // keep the buffer for the next read
  }
}

// ---- idle_transaction_timeout ----

void ClientConn::arm_idle_tx_timer() {
  if (pool_ == nullptr || !pool_->database().idle_transaction_timeout) return;
  if (!idle_tx_timer_) {
    idle_tx_timer_ = UvHandle<uv_timer_t>::make();
    uv_timer_init(daemon_.loop(), idle_tx_timer_.get());
    idle_tx_timer_->data = this;
  }
  auto ms = static_cast<std::uint64_t>(std::max(1.0, pool_->database().idle_transaction_timeout->count() * 1000.0));
  uv_timer_start(
      idle_tx_timer_.get(),
      [](uv_timer_t* t) noexcept {
        if (auto* self = static_cast<ClientConn*>(t->data)) self->on_idle_tx_timeout();
      },
      ms, 0);
  idle_tx_armed_ = true;
}

void ClientConn::stop_idle_tx_timer() {
  if (!idle_tx_armed_) return;
  idle_tx_armed_ = false;
  if (idle_tx_timer_) uv_timer_stop(idle_tx_timer_.get());
}

void ClientConn::on_idle_tx_timeout() {
  idle_tx_armed_ = false;
  if (state_ != State::kLinked || server_ == nullptr || (server_->tx_status() == 'I' && !unsynced_)) return;
  if (server_->outstanding() != 0 || !server_->owed().empty() || server_->cancel_in_flight()) {
    // The server is still working for this client: not idle. Look again later.
    arm_idle_tx_timer();
    return;
  }
  spdlog::warn("event=idle_transaction_timeout client={} peer={} user={} database={} server_pid={}", id_, peer_,
               user_, database_, server_->backend_pid());
  // As PostgreSQL's idle_in_transaction_session_timeout: FATAL 25P03; the transaction is rolled back when
  // the server connection is reset.
  fatal("25P03", fmt::format("terminating connection due to idle-in-transaction timeout (idle_transaction_timeout "
                             "{:g} s)",
                             pool_->database().idle_transaction_timeout->count()));
}

}  // namespace pooler::daemon
