// ServerConn: libpq connect driven from the loop, then the raw relay and the pooler's own queries.
#include "daemon/server_conn.h"

#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <array>
#include <string>

#include "daemon/client_conn.h"
#include "daemon/logging.h"
#include "daemon/scratch.h"
#include "protocol/error_response.h"
#include "protocol/writer.h"

namespace pooler::daemon {

namespace {

// The GUC_REPORT parameters of PostgreSQL 15: the server sends these as ParameterStatus at login, and libpq
// keeps them; we read them back because libpq consumed those messages during connect.
constexpr std::array<const char*, 13> kReportedParams = {
    "application_name",      "client_encoding",    "DateStyle",          "default_transaction_read_only",
    "in_hot_standby",        "integer_datetimes",  "IntervalStyle",      "is_superuser",
    "server_encoding",       "server_version",     "session_authorization", "standard_conforming_strings",
    "TimeZone"};

// Reads per readable event before yielding to other connections.
constexpr int kMaxReadsPerEvent = 16;

// Above this much unsent output on the client, stop reading from the server.
constexpr std::size_t kClientHighWater = 256 * 1024;

void set_param(std::vector<std::pair<std::string, std::string>>& params, std::string_view name, std::string_view value) {
  for (auto& [k, v] : params) {
    if (k == name) {
      v.assign(value);
      return;
    }
  }
  params.emplace_back(std::string(name), std::string(value));
}

// Splits a ParameterStatus body (two C strings).
bool split_param_status(std::string_view body, std::string_view& name, std::string_view& value) {
  auto nul = body.find('\0');
  if (nul == std::string_view::npos) return false;
  name = body.substr(0, nul);
  body.remove_prefix(nul + 1);
  auto nul2 = body.find('\0');
  if (nul2 == std::string_view::npos) return false;
  value = body.substr(0, nul2);
  return true;
}

struct CancelWork {
  uv_work_t req{};
  std::shared_ptr<ServerConn*> conn;  // nulled when the connection is destroyed first
  PGcancel* cancel = nullptr;
  std::optional<CancelTarget> own;  // instead of cancel, for a connection the pooler logged in itself
  int pid = 0;
  bool ok = false;
  std::array<char, 256> err{};
};

}  // namespace

// Interprets the server → client stream while linked: everything is forwarded except answers to requests the
// pooler added itself (prepared statements in transaction mode), which are cut out of the stream.
struct ServerConn::RelayHandler {
  ServerConn& s;
  bool rfq_seen = false;
  bool hide_next = false;  // stopped before a message to hide: the caller forwards what came before it
  bool hidden = false;     // the bytes scanned are exactly a hidden message: the caller drops them
  protocol::ScanStep on_start(char type) {
    if (!s.hiding_ && s.owed_.hides(type)) {
      hide_next = true;
      return protocol::ScanStep::kStopBefore;
    }
    return protocol::ScanStep::kContinue;
  }
  bool want_body(char type) { return type == 'Z' || type == 'S' || type == 'E'; }
  protocol::ScanStep on_end(char type, std::string_view body) {
    s.observe(type, body);
    bool made_up = s.owed_.on_message(type, s.statements_);
    if (s.hiding_) {
      s.hiding_ = false;
      hidden = true;
      return protocol::ScanStep::kStopAfter;
    }
    if (type == 'Z') {
      rfq_seen = true;
      if (s.tx_status_ == 'I' && s.in_tx_) s.end_transaction();
      // Stop so the client can act on the boundary (transaction mode releases here).
      return protocol::ScanStep::kStopAfter;
    }
    // Made-up answers are due right after this message: stop so they go out in their place.
    return made_up ? protocol::ScanStep::kStopAfter : protocol::ScanStep::kContinue;
  }
};

// Interprets the server's answers to the pooler's own queries (and anything it says while idle).
struct ServerConn::InternalHandler {
  ServerConn& s;
  bool fatal = false;
  std::string fatal_message;
  // DataRow: Int16 column count, then per column Int32 length (-1 = NULL) and the bytes.
  void capture_row(std::string_view row) {
    auto byte = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(row[i])); };
    if (row.size() < 2) return;
    const std::uint32_t columns = (byte(0) << 8) | byte(1);
    std::size_t pos = 2;
    auto& out = s.internal_result_.row;
    for (std::uint32_t c = 0; c < columns; ++c) {
      if (row.size() - pos < 4) return;
      const std::uint32_t len = (byte(pos) << 24) | (byte(pos + 1) << 16) | (byte(pos + 2) << 8) | byte(pos + 3);
      pos += 4;
      if (len == 0xffffffffU) {
        out.emplace_back(std::nullopt);
        continue;
      }
      if (len > row.size() - pos) return;
      out.emplace_back(std::string(row.substr(pos, len)));
      pos += len;
    }
    if (!out.empty() && out.front()) s.internal_result_.value = *out.front();
  }
  protocol::ScanStep on_start(char) { return protocol::ScanStep::kContinue; }
  bool want_body(char type) { return type == 'Z' || type == 'S' || type == 'E' || type == 'D'; }
  protocol::ScanStep on_end(char type, std::string_view body) {
    s.observe(type, body);
    if (type == 'D' && s.state_ == State::kInternal && s.internal_result_.rows++ == 0) capture_row(body);
    // Answers to a departed client's requests keep the prepared-statement bookkeeping right; whatever was
    // to be made up for it is dropped.
    if (s.owed_.on_message(type, s.statements_)) {
      std::string dropped;
      s.owed_.take_made_up(dropped, s.tx_status_);
    }
    if (type == 'Z' && s.state_ == State::kInternal && s.outstanding_ == 0) return protocol::ScanStep::kStopAfter;
    if (type != 'E') return protocol::ScanStep::kContinue;
    auto err = protocol::parse_error_response(body);
    std::string sev = err ? err->severity : "ERROR";
    if (sev == "FATAL" || sev == "PANIC") {
      fatal = true;
      fatal_message = err ? fmt::format("{} {}: {}", sev, err->sqlstate, err->message) : "FATAL";
    }
    if (s.state_ == State::kInternal && s.internal_result_.ok) {
      s.internal_result_.ok = false;
      if (err) {
        s.internal_result_.sqlstate = err->sqlstate;
        s.internal_result_.message = err->message;
        s.internal_result_.severity = err->severity;
      }
    }
    return fatal ? protocol::ScanStep::kStopAfter : protocol::ScanStep::kContinue;
  }
};

void ServerConn::observe(char type, std::string_view body) {
  switch (type) {
    case 'Z':
      tx_status_ = body.empty() ? 'I' : body[0];
      if (outstanding_ > 0) --outstanding_;
      copy_in_ = copy_out_ = false;
      break;
    case 'S': {
      std::string_view name, value;
      if (split_param_status(body, name, value)) set_param(params_, name, value);
      break;
    }
    case 'E':
      note_error(body);
      break;
    case 'G':
      copy_in_ = true;
      break;
    case 'H':
      copy_out_ = true;
      break;
    case 'W':
      copy_in_ = copy_out_ = true;
      break;
    case 'c':
      copy_out_ = false;
      break;
    default:
      break;
  }
}

ServerConn::ServerConn(uv_loop_t* loop, ServerConnOwner* owner, std::uint64_t id)
    : created_at(std::chrono::steady_clock::now()), loop_(loop), owner_(owner), id_(id) {}

ServerConn::~ServerConn() {
  if (self_) *self_ = nullptr;
  close();
}

const std::string* ServerConn::param(std::string_view name) const {
  for (const auto& [k, v] : params_) {
    if (k == name) return &v;
  }
  return nullptr;
}

const std::string* ServerConn::applied(std::string_view name) const {
  for (const auto& [k, v] : applied_) {
    if (k == name) return &v;
  }
  return nullptr;
}

void ServerConn::remember_applied(std::string_view name, std::string_view value) { set_param(applied_, name, value); }

void ServerConn::forget_applied(std::string_view name) {
  std::erase_if(applied_, [&](const auto& kv) { return kv.first == name; });
}

void ServerConn::connect(const ServerConnParams& params) {
  std::vector<const char*> keys;
  std::vector<const char*> values;
  for (const auto& [k, v] : params.libpq) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
    if (k == "host") host_label_ = v;
    if (k == "port") host_label_ += ":" + v;
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  scanner_.set_max_message_size(params.max_message_size);
  internal_timeout_ = params.internal_timeout;
  drain_timeout_ = params.drain_timeout;
  statements_.set_capacity(params.max_prepared_statements);
  query_timeout_ = params.query_timeout;
  if (params.own_login) {
    start_own_login(params);
    return;
  }

  pg_ = PQconnectStartParams(keys.data(), values.data(), 0);
  if (pg_ == nullptr) {
    connect_failed("out of memory starting a server connection");
    return;
  }
  if (PQstatus(pg_) == CONNECTION_BAD) {
    connect_failed(PQerrorMessage(pg_));
    return;
  }
  arm_connect_timer(params.connect_timeout);
  // libpq: "If you have yet to call PQconnectPoll, behave as if it last returned PGRES_POLLING_WRITING."
  int rc = sock_.open(loop_, PQsocket(pg_), /*owns_fd=*/false, this);
  if (rc != 0) {
    connect_failed(fmt::format("cannot poll server socket: {}", uv_strerror(rc)));
    return;
  }
  sock_.set_reading(false);
  sock_.set_write_interest(true);
}

void ServerConn::arm_connect_timer(std::chrono::duration<double> timeout) {
  connect_timer_ = UvHandle<uv_timer_t>::make();
  uv_timer_init(loop_, connect_timer_.get());
  connect_timer_->data = this;
  auto timeout_ms = static_cast<std::uint64_t>(std::max(1.0, timeout.count() * 1000.0));
  uv_timer_start(
      connect_timer_.get(),
      [](uv_timer_t* t) noexcept {
        if (auto* self = static_cast<ServerConn*>(t->data)) self->on_connect_timeout();
      },
      timeout_ms, 0);
}

bool ServerConn::watch(int fd) {
  sock_.close();
  int rc = sock_.open(loop_, fd, /*owns_fd=*/false, this);
  if (rc != 0) {
    connect_failed(fmt::format("cannot poll server socket: {}", uv_strerror(rc)));
    return false;
  }
  return true;
}

void ServerConn::start_own_login(const ServerConnParams& params) {
  OwnLoginTarget t;
  t.credentials = *params.own_login;
  std::string fallback_name;
  for (const auto& [k, v] : params.libpq) {
    if (k == "host") t.host = v;
    else if (k == "port") t.port = static_cast<std::uint16_t>(std::stoi(v));
    else if (k == "dbname") t.dbname = v;
    else if (k == "user") t.user = v;
    else if (k == "application_name") t.application_name = v;
    else if (k == "fallback_application_name") fallback_name = v;
    else if (k == "sslmode") t.sslmode = v;
    else if (k == "sslrootcert") t.sslrootcert = v;
    else if (k == "sslcert") t.sslcert = v;
    else if (k == "sslkey") t.sslkey = v;
    else if (k == "sslcrl") t.sslcrl = v;
    else if (k == "target_session_attrs") t.target_session_attrs = v;
    else if (k == "keepalives_idle") t.keepalive_idle_s = std::stoi(v);
  }
  if (t.application_name.empty()) t.application_name = fallback_name;
  host_label_ = fmt::format("{}:{}", t.host, t.port);
  arm_connect_timer(params.connect_timeout);
  own_ = std::make_unique<OwnLogin>(std::move(t));
  own_login_step(own_->start());
}

void ServerConn::own_login_step(OwnLogin::Step step) {
  switch (step) {
    case OwnLogin::Step::kFailed:
      connect_failed(own_->error());
      return;
    case OwnLogin::Step::kDone:
      finish_own_login();
      return;
    case OwnLogin::Step::kWantRead:
    case OwnLogin::Step::kWantWrite: {
      // As with libpq: the fd may be a new one (next address), so register afresh at each step.
      if (!watch(own_->fd())) return;
      const bool want_read = step == OwnLogin::Step::kWantRead;
      sock_.set_reading(want_read);
      sock_.set_write_interest(!want_read);
      return;
    }
  }
}

void ServerConn::finish_own_login() {
  connect_timer_.reset();
  if (!watch(own_->fd())) return;
  sock_.set_write_interest(false);
  if (own_->ssl() != nullptr) sock_.set_ssl(own_->ssl());
  const protocol::BackendLogin& login = own_->login();
  backend_pid_ = login.backend_pid();
  params_ = login.params();
  own_cancel_ = own_->cancel_target();
  host_label_ = own_->host_label();
  tx_status_ = 'I';
  state_ = State::kIdle;
  sock_.set_reading(true);
  const std::string leftover = login.leftover();
  owner_->on_server_connected(this);
  // Whatever the server sent after its first ReadyForQuery (a notice, say) is read as it would be later.
  if (!leftover.empty() && state_ != State::kClosed) process(leftover);
}

void ServerConn::on_connect_timeout() {
  if (state_ != State::kConnecting) return;
  connect_failed("timeout expired while connecting to the server");
}

void ServerConn::poll_connect() {
  if (own_) {
    own_login_step(own_->resume());
    return;
  }
  PostgresPollingStatusType st = PQconnectPoll(pg_);
  if (st == PGRES_POLLING_FAILED) {
    connect_failed(PQerrorMessage(pg_));
    return;
  }
  if (st == PGRES_POLLING_OK) {
    finish_connect();
    return;
  }
  // libpq may switch sockets (a retry without TLS, another address of the host), and a new socket can
  // reuse the old descriptor number, which epoll would no longer watch: register afresh at every step
  // (a handful of steps per connection, never on the relay path).
  if (!watch(PQsocket(pg_))) return;
  bool want_read = st == PGRES_POLLING_READING;
  sock_.set_reading(want_read);
  sock_.set_write_interest(!want_read);
}

void ServerConn::finish_connect() {
  connect_timer_.reset();
  sock_.set_write_interest(false);
  if (PQsslInUse(pg_) != 0) {
    sock_.set_ssl(static_cast<SSL*>(PQsslStruct(pg_, "OpenSSL")));
  }
  backend_pid_ = PQbackendPID(pg_);
  for (const char* name : kReportedParams) {
    if (const char* v = PQparameterStatus(pg_, name)) params_.emplace_back(name, v);
  }
  const char* host = PQhost(pg_);
  const char* port = PQport(pg_);
  if (host != nullptr) host_label_ = fmt::format("{}:{}", host, port != nullptr ? port : "");
  tx_status_ = 'I';
  state_ = State::kIdle;
  sock_.set_reading(true);
  owner_->on_server_connected(this);
}

void ServerConn::connect_failed(std::string error) {
  // libpq's messages span lines ("...failed: Connection refused\n\tIs the server running..."): one line for
  // logs and ErrorResponses.
  std::string flat;
  for (char ch : error) {
    if (ch == '\n' || ch == '\t' || ch == '\r') ch = ' ';
    if (ch == ' ' && !flat.empty() && flat.back() == ' ') continue;
    flat += ch;
  }
  error = std::move(flat);
  while (!error.empty() && error.back() == ' ') error.pop_back();
  close();
  owner_->on_server_connect_failed(this, std::move(error));
}

void ServerConn::note_error(std::string_view body) {
  auto err = protocol::parse_error_response(body);
  if (!err) return;
  // admin_shutdown, crash_shutdown, cannot_connect_now: the server is going away or restarting.
  if (err->sqlstate == "57P01" || err->sqlstate == "57P02" || err->sqlstate == "57P03") shutdown_seen_ = true;
}

bool ServerConn::is_clean() const {
  return state_ != State::kClosed && state_ != State::kConnecting && scanner_.at_boundary() && outstanding_ == 0 &&
         !copy_in_ && !copy_out_ && owed_.empty();
}

void ServerConn::link(ClientConn* client) {
  client_ = client;
  state_ = State::kLinked;
  paused_ = false;
  sock_.set_reading(true);
}

void ServerConn::unlink() {
  client_ = nullptr;
  settle_waiter_ = nullptr;
  if (request_timer_armed_) {
    uv_timer_stop(request_timer_.get());
    request_timer_armed_ = false;
  }
  cancel_sent_ = false;
  in_tx_ = false;
  drain_waiter_ = nullptr;
  if (state_ == State::kLinked) state_ = State::kIdle;
  paused_ = false;
  if (sock_.is_open()) sock_.set_reading(true);
}

void ServerConn::end_transaction() {
  in_tx_ = false;
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - tx_start_);
  if (metrics_ != nullptr) {
    metrics_->transactions.Increment();
    metrics_->transaction_duration_seconds.Observe(static_cast<double>(us.count()) / 1e6);
  }
  if (totals_ != nullptr) {
    ++totals_->xacts;
    totals_->xact_time_us += static_cast<std::uint64_t>(us.count());
  }
}

bool ServerConn::send_from_client(std::string_view bytes, int new_requests) {
  outstanding_ += new_requests;
  if (!in_tx_) {
    in_tx_ = true;
    tx_start_ = std::chrono::steady_clock::now();
  }
  // Byte and query counters are plain totals here; the pool adds them to its Prometheus counters at scrape
  // time (an atomic add per chunk would cost more than the count).
  if (totals_ != nullptr) {
    totals_->received += bytes.size();
    totals_->queries += static_cast<std::uint64_t>(new_requests);
  }
  if (query_timeout_ && new_requests > 0 && !request_timer_armed_) arm_request_timer(*query_timeout_);
  if (!sock_.send(bytes)) {
    lost("write to server failed");
    return false;
  }
  return true;
}

void ServerConn::pause_reading(bool paused) {
  paused_ = paused;
  if (sock_.is_open()) sock_.set_reading(!paused);
}

void ServerConn::start_internal(InternalDone done, std::chrono::duration<double> timeout) {
  internal_done_ = std::move(done);
  internal_result_ = InternalResult{};
  state_ = State::kInternal;
  sock_.set_reading(true);
  if (!internal_timer_) {
    internal_timer_ = UvHandle<uv_timer_t>::make();
    uv_timer_init(loop_, internal_timer_.get());
    internal_timer_->data = this;
  }
  auto ms = static_cast<std::uint64_t>(std::max(1.0, timeout.count() * 1000.0));
  uv_timer_start(
      internal_timer_.get(),
      [](uv_timer_t* t) noexcept {
        if (auto* self = static_cast<ServerConn*>(t->data)) self->on_internal_timeout();
      },
      ms, 0);
}

void ServerConn::on_internal_timeout() {
  if (state_ != State::kInternal) return;
  lost(fmt::format("no answer from the server within {:.2f} s", internal_timeout_.count()));
}

void ServerConn::run_internal(const std::vector<std::string>& sql_batch, InternalDone done) {
  std::string out;
  for (const auto& sql : sql_batch) protocol::write_query(out, sql);
  drain_internal(out, static_cast<int>(sql_batch.size()), std::move(done));
}

void ServerConn::drain_internal(std::string_view raw, int requests, InternalDone done, bool long_wait) {
  start_internal(std::move(done), long_wait ? drain_timeout_ : internal_timeout_);
  outstanding_ += requests;
  if (!raw.empty() && !sock_.send(raw)) {
    lost("write to server failed");
    return;
  }
  if (outstanding_ == 0) finish_internal();
}

void ServerConn::arm_request_timer(std::chrono::duration<double> after) {
  if (!request_timer_) {
    request_timer_ = UvHandle<uv_timer_t>::make();
    uv_timer_init(loop_, request_timer_.get());
    request_timer_->data = this;
  }
  auto ms = static_cast<std::uint64_t>(std::max(1.0, after.count() * 1000.0));
  uv_timer_start(
      request_timer_.get(),
      [](uv_timer_t* t) noexcept {
        if (auto* self = static_cast<ServerConn*>(t->data)) self->on_request_timeout();
      },
      ms, 0);
  request_timer_armed_ = true;
}

void ServerConn::on_request_timeout() {
  request_timer_armed_ = false;
  if (state_ != State::kLinked || outstanding_ == 0 || !query_timeout_) return;
  if (cancel_sent_) {
    // The cancel did not stop it either: the connection is not usable for anyone.
    lost(fmt::format("query_timeout: the server did not stop the request within {:.2f} s of a cancel",
                     internal_timeout_.count()));
    return;
  }
  cancel_sent_ = true;
  spdlog::warn("event=query_timeout server={} server_pid={} timeout_s={:.3f}", id_, backend_pid_,
               query_timeout_->count());
  if (client_ != nullptr) {
    std::string notice;
    protocol::write_notice_response(
        notice, protocol::ErrorFields{protocol::Severity::kWarning, "57014",
                                      fmt::format("query_timeout ({:g} s) reached: the pooler is cancelling the "
                                                  "statement",
                                                  query_timeout_->count()),
                                      {}, {}});
    client_->deliver(notice);
  }
  cancel_running_query();
  arm_request_timer(internal_timeout_);
}

void ServerConn::on_cancel_done() {
  if (--cancels_in_flight_ > 0 || state_ == State::kClosed) return;
  if (state_ == State::kInternal && finish_after_cancel_) {
    finish_after_cancel_ = false;
    finish_internal();
  } else if (state_ == State::kLinked && client_ != nullptr) {
    client_->resume_relay();
  }
}

bool ServerConn::deliver_made_up() {
  if (!owed_.made_up_due()) return false;
  std::string out;
  bool ready = owed_.take_made_up(out, tx_status_);
  if (client_ != nullptr) client_->deliver(out);
  return ready;
}

void ServerConn::finish_internal() {
  if (cancels_in_flight_ > 0) {
    // Nobody may use the connection while the cancel can still hit it.
    finish_after_cancel_ = true;
    return;
  }
  // A drain after a departed client: whatever was to be made up for it no longer matters. Anything else
  // left owed means the bookkeeping lost track, and is_clean() keeps the connection from being reused.
  if (owed_.size() == 0) owed_.reset();
  state_ = State::kIdle;
  if (internal_timer_) uv_timer_stop(internal_timer_.get());
  InternalDone done = std::move(internal_done_);
  internal_done_ = nullptr;
  if (done) done(this, internal_result_);
}

void ServerConn::cancel_running_query() {
  if ((pg_ == nullptr && !own_cancel_) || state_ == State::kClosed) return;
  auto* work = new CancelWork{};
  if (pg_ != nullptr) {
    work->cancel = PQgetCancel(pg_);
  } else {
    work->own = own_cancel_;
  }
  work->pid = backend_pid_;
  if (work->cancel == nullptr && !work->own) {
    delete work;
    return;
  }
  work->req.data = work;
  if (!self_) self_ = std::make_shared<ServerConn*>(this);
  work->conn = self_;
  ++cancels_in_flight_;
  // PQcancel opens a new connection and blocks, so it runs on the thread pool; it owns its PGcancel.
  int rc = uv_queue_work(
      loop_, &work->req,
      [](uv_work_t* req) noexcept {
        auto* w = static_cast<CancelWork*>(req->data);
        if (w->own) {
          const std::string error = send_cancel_request(*w->own);
          w->ok = error.empty();
          std::snprintf(w->err.data(), w->err.size(), "%s", error.c_str());
          return;
        }
        w->ok = PQcancel(w->cancel, w->err.data(), static_cast<int>(w->err.size())) == 1;
      },
      [](uv_work_t* req, int) noexcept {
        auto* w = static_cast<CancelWork*>(req->data);
        if (!w->ok) spdlog::warn("event=cancel_failed server_pid={} error={}", w->pid, log_value(w->err.data()));
        if (w->cancel != nullptr) PQfreeCancel(w->cancel);
        if (ServerConn* s = *w->conn) s->on_cancel_done();
        delete w;
      });
  if (rc != 0) {
    --cancels_in_flight_;
    if (work->cancel != nullptr) PQfreeCancel(work->cancel);
    delete work;
  }
}

void ServerConn::close() {
  if (state_ == State::kClosed && pg_ == nullptr && !own_) return;
  bool clean = is_clean();
  connect_timer_.reset();
  internal_timer_.reset();
  request_timer_.reset();
  request_timer_armed_ = false;
  int fd = sock_.fd();
  if (own_ && clean && state_ != State::kConnecting && sock_.is_open()) {
    std::string terminate;
    protocol::write_terminate(terminate);
    (void)sock_.send(terminate);
  }
  sock_.close();
  if (own_) {
    if (clean && state_ != State::kConnecting) {
      own_->shutdown_tls();
    } else if (fd >= 0) {
      ::shutdown(fd, SHUT_RDWR);
    }
    own_.reset();
  }
  if (pg_ != nullptr) {
    // PQfinish sends Terminate; mid-message that would corrupt the stream, so cut the socket first.
    if (!clean && fd >= 0) ::shutdown(fd, SHUT_RDWR);
    PQfinish(pg_);
    pg_ = nullptr;
  }
  state_ = State::kClosed;
  client_ = nullptr;
  drain_waiter_ = nullptr;
}

void ServerConn::lost(std::string reason) {
  if (state_ == State::kClosed) return;
  State was = state_;
  ClientConn* client = client_;
  InternalDone done = std::move(internal_done_);
  internal_done_ = nullptr;
  close();
  if (was == State::kLinked && client != nullptr) client->on_server_lost(reason);
  if (was == State::kInternal && done) {
    InternalResult r;
    r.ok = false;
    r.sqlstate = "08006";
    r.message = reason;
    r.severity = "FATAL";
    done(this, r);
  }
  owner_->on_server_lost(this, std::move(reason));
}

void ServerConn::on_readable() {
  if (state_ == State::kConnecting) {
    poll_connect();
    return;
  }
  char* buf = scratch_buffer();
  for (int i = 0; i < kMaxReadsPerEvent && state_ != State::kClosed && !paused_; ++i) {
    IoResult r = sock_.read(buf, kScratchSize);
    if (r.status == IoStatus::kWouldBlock) return;
    if (r.status == IoStatus::kEof) {
      lost("server closed the connection unexpectedly");
      return;
    }
    if (r.status == IoStatus::kError) {
      lost(fmt::format("read from server failed: {}", std::strerror(r.err)));
      return;
    }
    process(std::string_view(buf, r.n));
    if (r.n < kScratchSize && !sock_.has_buffered_input()) return;
  }
}

void ServerConn::process(std::string_view data) {
  while (!data.empty() && state_ != State::kClosed) {
    if (state_ == State::kLinked) {
      RelayHandler h{*this};
      auto res = scanner_.scan(data, h);
      if (!res) {
        lost(fmt::format("protocol error from server: {}", res.error().message));
        return;
      }
      ClientConn* client = client_;
      std::string_view chunk = data.substr(0, res->consumed);
      data.remove_prefix(res->consumed);
      if (h.hide_next) hiding_ = true;
      if (client == nullptr) continue;
      if (!h.hidden && !chunk.empty()) {
        if (totals_ != nullptr) totals_->sent += chunk.size();
        std::size_t backlog = client->deliver(chunk);
        if (state_ != State::kLinked || client_ != client) continue;
        if (backlog > kClientHighWater) pause_reading(true);
      }
      bool made_up_ready = deliver_made_up();
      if (state_ != State::kLinked || client_ != client) continue;
      if (settle_waiter_ == client && owed_.size() == 0) {
        settle_waiter_ = nullptr;
        client->resume_relay();
        if (state_ != State::kLinked || client_ != client) continue;
      }
      if (h.rfq_seen) {
        // The next request (if any) starts its query_timeout now.
        cancel_sent_ = false;
        if (query_timeout_) {
          if (outstanding_ > 0) {
            arm_request_timer(*query_timeout_);
          } else if (request_timer_armed_) {
            uv_timer_stop(request_timer_.get());
            request_timer_armed_ = false;
          }
        }
      }
      // Already-read bytes are always processed in full; pausing only stops further reads.
      if (h.rfq_seen || made_up_ready) client->on_server_ready(tx_status_);
    } else if (state_ == State::kConnecting) {
      return;
    } else {
      InternalHandler h{*this, false, {}};
      auto res = scanner_.scan(data, h);
      if (!res) {
        lost(fmt::format("protocol error from server: {}", res.error().message));
        return;
      }
      data.remove_prefix(res->consumed);
      if (h.fatal) {
        lost(h.fatal_message);
        return;
      }
      if (state_ == State::kInternal && outstanding_ == 0) finish_internal();
    }
  }
}

void ServerConn::on_drained() {
  if (state_ == State::kConnecting) {
    poll_connect();
    return;
  }
  if (ClientConn* c = std::exchange(drain_waiter_, nullptr); c != nullptr && c == client_) c->on_server_drained();
}

void ServerConn::on_socket_error(int uv_error) {
  if (state_ == State::kConnecting) {
    poll_connect();
    return;
  }
  lost(fmt::format("server socket error: {}", uv_strerror(uv_error)));
}

}  // namespace pooler::daemon
