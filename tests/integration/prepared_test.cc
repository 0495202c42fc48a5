// Transaction mode with protocol-level prepared statements and the awkward protocol corners (issue 7):
// pgbench -M prepared, real client libraries (psycopg 3, asyncpg, JDBC), libpq pipelines with named
// statements, errors and Flush, COPY of 100 MB with flat daemon memory, query_timeout,
// idle_transaction_timeout and LISTEN refused. Every pool has fewer server connections than there are
// clients, so server connections really rotate under the clients' statements.
#include <poll.h>
#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include "tests/harness/run_command.h"
#include "tests/harness/temp_dir.h"
#include "tests/integration/integration_support.h"

namespace pooler::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kPgbench = "/usr/lib/postgresql/15/bin/pgbench";
// Debian's interpreter, where python3-psycopg and python3-asyncpg are installed (PATH may hold another).
constexpr const char* kPython = "/usr/bin/python3";
constexpr const char* kJdbcJar = "/usr/share/java/postgresql.jar";

// Server connections per pool (max_overflow 0): always fewer than the clients of a test.
constexpr int kPoolSize = 2;
constexpr int kMaxPrepared = 10;

// The pooler's databases, all in transaction mode on the server database "app", each with its own pool.
constexpr const char* kPrepDb = "app";           // max_prepared_statements = kMaxPrepared
constexpr const char* kNoPrepDb = "noprep";      // max_prepared_statements = 0: pass-through
constexpr const char* kQueryTimeoutDb = "qtimeout";  // query_timeout = 1
constexpr const char* kIdleTimeoutDb = "itimeout";   // idle_transaction_timeout = 1

std::string clients_dir() { return std::string(POOLER_SOURCE_DIR) + "/tests/integration/clients"; }

PoolerConfig suite_config(const PgCluster& cluster) {
  PoolerConfig config = app_pooler_config(cluster);
  config.log_level = "info";
  PoolerDatabase base = config.databases.front();
  base.pool_mode = "transaction";
  base.pool_size = kPoolSize;
  base.max_overflow = 0;
  base.dbname = kAppDatabase;
  auto database = [&](std::string name, std::vector<std::string> lines) {
    PoolerDatabase db = base;
    db.name = std::move(name);
    db.extra_lines = std::move(lines);
    return db;
  };
  const std::string max_prepared = fmt::format("max_prepared_statements = {}", kMaxPrepared);
  config.databases = {
      database(kPrepDb, {max_prepared}),
      database(kNoPrepDb, {"max_prepared_statements = 0"}),
      database(kQueryTimeoutDb, {max_prepared, "query_timeout = 1.0"}),
      database(kIdleTimeoutDb, {max_prepared, "idle_transaction_timeout = 1.0"}),
  };
  return config;
}

// A field of /proc/<pid>/status in KiB (VmRSS, VmHWM); throws when it cannot be read.
long proc_status_kib(pid_t pid, const std::string& field) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  throw std::runtime_error(fmt::format("no {} in /proc/{}/status", field, pid));
}

int backend_pid(PGconn* conn) { return std::stoi(query_value(conn, "SELECT pg_backend_pid()")); }

// ---- libpq's asynchronous API with deadlines, so that a hung pooler fails a test instead of hanging it ----

// The next PQgetResult (nullptr included: it ends each query's results in pipeline mode), once libpq can
// give it without blocking. Throws at the deadline.
PGresult* next_result(PGconn* conn, Clock::time_point deadline) {
  for (;;) {
    if (PQflush(conn) < 0) return PQgetResult(conn);
    if (PQisBusy(conn) == 0) return PQgetResult(conn);
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) throw std::runtime_error("no result from the pooler before the deadline");
    pollfd pfd{PQsocket(conn), POLLIN, 0};
    ::poll(&pfd, 1, static_cast<int>(left));
    if (PQconsumeInput(conn) == 0) return PQgetResult(conn);  // broken: libpq queues the error as a result
  }
}

// Reads a pipeline's results in order, checking their shape as it goes.
class PipelineReader {
 public:
  explicit PipelineReader(PGconn* conn, std::chrono::milliseconds timeout = 60s)
      : conn_(conn), deadline_(Clock::now() + timeout) {}

  // One query's result, and the nullptr that ends it.
  PgResultPtr query() {
    PgResultPtr result(next_result(conn_, deadline_));
    if (!result) throw std::runtime_error("expected a query result, got the end of one");
    ExecStatusType status = PQresultStatus(result.get());
    if (status == PGRES_PIPELINE_SYNC) throw std::runtime_error("expected a query result, got a Sync");
    PgResultPtr end(next_result(conn_, deadline_));
    if (end) {
      throw std::runtime_error(fmt::format("expected the end of a query's results, got {}",
                                           PQresStatus(PQresultStatus(end.get()))));
    }
    return result;
  }
  // A query result that must be one row of one value; returns the value. `what` names it in errors.
  std::string value(std::string_view what = "") {
    PgResultPtr r = query();
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQntuples(r.get()) != 1) {
      throw std::runtime_error(fmt::format("{}{}expected one row, got {}: {}", what, what.empty() ? "" : ": ",
                                           PQresStatus(PQresultStatus(r.get())), PQresultErrorMessage(r.get())));
    }
    return PQgetvalue(r.get(), 0, 0);
  }
  // A statement preparation (PQsendPrepare) that must succeed.
  void prepared(std::string_view what = "") {
    PgResultPtr r = query();
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
      throw std::runtime_error(fmt::format("{}{}prepare failed: {}", what, what.empty() ? "" : ": ",
                                           PQresultErrorMessage(r.get())));
    }
  }
  // The result of a Sync.
  void sync() {
    PgResultPtr r(next_result(conn_, deadline_));
    if (!r || PQresultStatus(r.get()) != PGRES_PIPELINE_SYNC) {
      throw std::runtime_error(fmt::format("expected a Sync, got {}{}", r ? PQresStatus(PQresultStatus(r.get())) : "(end)",
                                           r ? std::string(": ") + PQresultErrorMessage(r.get()) : ""));
    }
  }

 private:
  PGconn* conn_;
  Clock::time_point deadline_;
};

void send_params(PGconn* conn, const std::string& sql, const std::vector<std::string>& values) {
  std::vector<const char*> params;
  for (const auto& v : values) params.push_back(v.c_str());
  if (PQsendQueryParams(conn, sql.c_str(), static_cast<int>(params.size()), nullptr, params.data(), nullptr,
                        nullptr, 0) != 1) {
    throw std::runtime_error(fmt::format("PQsendQueryParams: {}", PQerrorMessage(conn)));
  }
}

void send_prepared(PGconn* conn, const std::string& name, const std::vector<std::string>& values) {
  std::vector<const char*> params;
  for (const auto& v : values) params.push_back(v.c_str());
  if (PQsendQueryPrepared(conn, name.c_str(), static_cast<int>(params.size()), params.data(), nullptr, nullptr,
                          0) != 1) {
    throw std::runtime_error(fmt::format("PQsendQueryPrepared: {}", PQerrorMessage(conn)));
  }
}

void send_prepare(PGconn* conn, const std::string& name, const std::string& sql) {
  if (PQsendPrepare(conn, name.c_str(), sql.c_str(), 0, nullptr) != 1) {
    throw std::runtime_error(fmt::format("PQsendPrepare: {}", PQerrorMessage(conn)));
  }
}

// PQexecPrepared with text parameters; the result whatever its status.
PgResultPtr exec_prepared(PGconn* conn, const std::string& name, const std::vector<std::string>& values) {
  std::vector<const char*> params;
  for (const auto& v : values) params.push_back(v.c_str());
  return PgResultPtr(
      PQexecPrepared(conn, name.c_str(), static_cast<int>(params.size()), params.data(), nullptr, nullptr, 0));
}

// The single value of a prepared statement's execution that must succeed.
std::string prepared_value(PGconn* conn, const std::string& name, const std::vector<std::string>& values) {
  PgResultPtr r = exec_prepared(conn, name, values);
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQntuples(r.get()) != 1) {
    throw std::runtime_error(fmt::format("EXECUTE {}: {}", name, PQresultErrorMessage(r.get())));
  }
  return PQgetvalue(r.get(), 0, 0);
}

void pipeline_sync(PGconn* conn) {
  if (PQpipelineSync(conn) != 1) throw std::runtime_error(fmt::format("PQpipelineSync: {}", PQerrorMessage(conn)));
}

// Collects every result of what was sent (outside pipeline mode) and returns the last, or nullptr when the
// connection broke first.
PgResultPtr last_result(PGconn* conn, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  PgResultPtr last;
  for (;;) {
    PGresult* r = next_result(conn, deadline);
    if (r == nullptr) return last;
    last.reset(r);
  }
}

// ---- COPY data: deterministic rows the test and the server can both rebuild ----

constexpr int kCopyRows = 1'000'000;
constexpr std::size_t kPayloadLength = 94;

// Pseudo-random letters that payloads are cut from; the server checks rows with the same formula.
const std::string& copy_letters() {
  static const std::string letters = [] {
    std::string s;
    std::uint64_t x = 0x2545F4914F6CDD1DULL;
    for (int i = 0; i < 4096; ++i) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      s += static_cast<char>('a' + x % 26);
    }
    return s;
  }();
  return letters;
}

constexpr std::uint64_t kOffsetFactor = 7919;
std::size_t payload_offset(std::uint64_t id) { return id * kOffsetFactor % (copy_letters().size() - kPayloadLength); }

// COPY text rows "id<TAB>payload<LF>" for ids 1..kCopyRows, made on demand.
class CopyRows {
 public:
  bool done() const { return next_ > kCopyRows; }
  // Appends whole rows until `out` holds at least `bytes` bytes or the rows run out.
  void append(std::string& out, std::size_t bytes) {
    while (out.size() < bytes && next_ <= kCopyRows) {
      out += std::to_string(next_);
      out += '\t';
      out.append(copy_letters(), payload_offset(static_cast<std::uint64_t>(next_)), kPayloadLength);
      out += '\n';
      ++next_;
    }
  }
  static std::uint64_t total_bytes() {
    std::uint64_t total = 0;
    for (int id = 1; id <= kCopyRows; ++id) total += std::to_string(id).size() + kPayloadLength + 2;
    return total;
  }

 private:
  int next_ = 1;
};

// Compares a received COPY stream, in whatever pieces it comes, with the rows it must hold.
class CopyChecker {
 public:
  void feed(std::string_view data) {
    received_ += data.size();
    if (mismatch_at_) return;
    while (expected_.size() - pos_ < data.size() && !rows_.done()) {
      rows_.append(expected_, expected_.size() + 256 * 1024);
    }
    std::string_view want = std::string_view(expected_).substr(pos_, data.size());
    if (want != data) {
      std::size_t i = 0;
      while (i < want.size() && want[i] == data[i]) ++i;
      mismatch_at_ = received_ - data.size() + i;
      return;
    }
    pos_ += data.size();
    if (pos_ > 1024 * 1024) {
      expected_.erase(0, pos_);
      pos_ = 0;
    }
  }
  bool complete() const { return !mismatch_at_ && rows_.done() && pos_ == expected_.size(); }
  std::string describe() const {
    if (mismatch_at_) return fmt::format("the stream differs from the rows sent at byte {}", *mismatch_at_);
    return fmt::format("received {} bytes, rows {}", received_, complete() ? "complete" : "incomplete");
  }
  std::uint64_t received() const { return received_; }

 private:
  CopyRows rows_;
  std::string expected_;
  std::size_t pos_ = 0;
  std::uint64_t received_ = 0;
  std::optional<std::uint64_t> mismatch_at_;
};

// Another client running SELECT 1 in a loop on its own thread, competing for the server connections.
class Rival {
 public:
  explicit Rival(std::string conninfo)
      : thread_([this, conninfo = std::move(conninfo)] {
          try {
            PgConnPtr conn = connect(conninfo);
            while (!stop_.load()) {
              query_value(conn.get(), "SELECT 1");
              ++done_;
            }
          } catch (const std::exception& e) {
            std::lock_guard lock(mutex_);
            error_ = e.what();
          }
        }) {}
  ~Rival() { stop(); }
  Rival(const Rival&) = delete;
  Rival& operator=(const Rival&) = delete;
  // Stops and joins; returns how many queries it ran, or -1 after an error.
  int stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    std::lock_guard lock(mutex_);
    if (!error_.empty()) {
      ADD_FAILURE() << "rival client: " << error_;
      error_.clear();
      return -1;
    }
    return done_.load();
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> done_{0};
  std::mutex mutex_;
  std::string error_;
  std::thread thread_;
};

// Watches a client connection the pooler is expected to close: collects the SQLSTATEs of what arrives while
// the client is idle (libpq hands such an ErrorResponse to the notice receiver) and waits for the close.
class ClosedByPooler {
 public:
  explicit ClosedByPooler(PGconn* conn) : conn_(conn) {
    PQsetNoticeReceiver(
        conn_,
        [](void* arg, const PGresult* r) {
          const char* code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
          static_cast<ClosedByPooler*>(arg)->sqlstates_.push_back(code != nullptr ? code : "");
        },
        this);
  }
  ClosedByPooler(const ClosedByPooler&) = delete;
  ClosedByPooler& operator=(const ClosedByPooler&) = delete;

  // True once the connection is closed, false if it is still open after `limit`.
  bool wait(std::chrono::milliseconds limit) {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      pollfd pfd{PQsocket(conn_), POLLIN, 0};
      ::poll(&pfd, 1, 200);
      const bool read_ok = PQconsumeInput(conn_) == 1;
      PQisBusy(conn_);  // parses what was read, so that an ErrorResponse reaches the notice receiver
      if (!read_ok || PQstatus(conn_) != CONNECTION_OK) return true;
    }
    return false;
  }
  bool got(const std::string& sqlstate) const {
    return std::find(sqlstates_.begin(), sqlstates_.end(), sqlstate) != sqlstates_.end();
  }
  std::string describe() const { return sqlstates_.empty() ? "nothing" : fmt::format("{}", fmt::join(sqlstates_, ", ")); }

 private:
  PGconn* conn_;
  std::vector<std::string> sqlstates_;
};

// ---- pgbench output ----

struct PgbenchSummary {
  long processed = -1;
  long expected = -1;
  long failed = -1;
};

PgbenchSummary parse_pgbench(const std::string& out) {
  PgbenchSummary s;
  std::smatch m;
  if (std::regex_search(out, m, std::regex(R"(number of transactions actually processed: (\d+)/(\d+))"))) {
    s.processed = std::stol(m[1]);
    s.expected = std::stol(m[2]);
  }
  if (std::regex_search(out, m, std::regex(R"(number of failed transactions: (\d+))"))) s.failed = std::stol(m[1]);
  return s;
}

// What one server connection holds, seen from inside it.
struct ServerStatements {
  int pid = 0;
  int total = 0;
  int pooler_named = 0;  // named pooler% (generated by the pooler, not the clients' names)
  int duplicates = 0;    // statements with the same text and parameter types as another one
  int listening = 0;     // pg_listening_channels()
  std::string names;
};

class IntegrationPrepared : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_.cluster = std::make_unique<PgCluster>(app_cluster_options());
    stack_.daemon = std::make_unique<DaemonProcess>(suite_config(*stack_.cluster));
  }
  static void TearDownTestSuite() { stack_.reset(); }
  void SetUp() override { admin_ = connect(stack_.cluster->superuser_conninfo(kAppDatabase)); }
  void TearDown() override { dump_logs_on_failure(stack_); }

  static std::string conninfo(const std::string& db, const std::string& extra = "") {
    return pooler_conninfo(*stack_.daemon, kAppUser, kAppPassword, db, extra);
  }
  static PgConnPtr client(const std::string& db) { return connect(conninfo(db)); }

  // kPoolSize clients, each in an open transaction on a different server connection of `db`'s pool:
  // nobody else gets a connection of that pool until they are dropped.
  static std::vector<std::pair<PgConnPtr, int>> occupy_all(const std::string& db) {
    std::vector<std::pair<PgConnPtr, int>> held;
    for (int i = 0; i < kPoolSize; ++i) {
      PgConnPtr c = client(db);
      int pid = std::stoi(query_value(c.get(), "BEGIN; SELECT pg_backend_pid()"));
      held.emplace_back(std::move(c), pid);
    }
    if (held[0].second == held[1].second) throw std::runtime_error("two open transactions share a backend");
    return held;
  }

  // Holds the server connection with backend `pid` in an open transaction and frees the others, so the next
  // client of `db` gets a server connection that is not `pid`.
  static PgConnPtr occupy(const std::string& db, int pid) {
    PgConnPtr kept;
    for (auto& [c, held_pid] : occupy_all(db)) {
      if (held_pid == pid) {
        kept = std::move(c);
      } else {
        exec_ok(c.get(), "COMMIT");
      }
    }
    if (!kept) throw std::runtime_error(fmt::format("backend {} is no longer in the pool of {}", pid, db));
    return kept;
  }

  // Holds every server connection of `db`'s pool except the one with backend `pid`, so that the next
  // clients of `db` all get that one.
  static PgConnPtr occupy_other_than(const std::string& db, int pid) {
    PgConnPtr kept;
    bool seen = false;
    for (auto& [c, held_pid] : occupy_all(db)) {
      if (held_pid == pid) {
        seen = true;
        exec_ok(c.get(), "COMMIT");
      } else {
        kept = std::move(c);
      }
    }
    if (!seen || !kept) throw std::runtime_error(fmt::format("backend {} is no longer in the pool of {}", pid, db));
    return kept;
  }

  // What every server connection of `db`'s pool holds (each seen from a client in an open transaction).
  static std::vector<ServerStatements> census(const std::string& db) {
    std::vector<ServerStatements> out;
    for (auto& [c, pid] : occupy_all(db)) {
      PgResultPtr r = exec_ok(c.get(),
                              "SELECT count(*), count(*) FILTER (WHERE name LIKE 'pooler%'), "
                              "count(*) - count(DISTINCT (statement, parameter_types::text)), "
                              "(SELECT count(*) FROM pg_listening_channels()), "
                              "coalesce(string_agg(name || ' ' || parameter_types::text || ' ' || quote_literal(left(statement, 60)), "
                              "', ' ORDER BY name), '') FROM pg_prepared_statements");
      ServerStatements s;
      s.pid = pid;
      s.total = std::stoi(PQgetvalue(r.get(), 0, 0));
      s.pooler_named = std::stoi(PQgetvalue(r.get(), 0, 1));
      s.duplicates = std::stoi(PQgetvalue(r.get(), 0, 2));
      s.listening = std::stoi(PQgetvalue(r.get(), 0, 3));
      s.names = PQgetvalue(r.get(), 0, 4);
      exec_ok(c.get(), "COMMIT");
      out.push_back(s);
    }
    return out;
  }

  // Server-side statements of `db`'s pool after a workload: at most max_prepared_statements per server
  // connection, all under pooler-generated names, one per distinct text (shared between clients), and at
  // least one in all (the workload did prepare).
  static void expect_statements_bounded(const std::string& db) {
    std::vector<ServerStatements> conns = census(db);
    int total = 0;
    for (const auto& s : conns) {
      SCOPED_TRACE(fmt::format("server connection pid {}: {} statements:\n  {}", s.pid, s.total, s.names));
      EXPECT_LE(s.total, kMaxPrepared) << "more statements than max_prepared_statements";
      EXPECT_EQ(s.pooler_named, s.total) << "statements not named by the pooler (client names reached the server)";
      EXPECT_EQ(s.duplicates, 0) << "identical statements prepared twice on one server connection";
      total += s.total;
    }
    EXPECT_GT(total, 0) << "no prepared statement on any server connection";
    EXPECT_LE(total, kMaxPrepared * kPoolSize);
  }

  // pgbench through the pooler's database `db` as app/secret; -n because the tables were vacuumed at init.
  static CommandResult pgbench(const std::string& db, std::vector<std::string> args) {
    std::vector<std::string> argv = {kPgbench, "-n", "-h", stack_.daemon->listen_addr(), "-p",
                                     std::to_string(stack_.daemon->port()), "-U", kAppUser};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(db);
    return run_command(argv, CommandOptions{240s, {{"PGPASSWORD", kAppPassword}}, ""});
  }

  // pgbench -i -s 1, directly against the server, once per process.
  static void ensure_pgbench_tables() {
    if (pgbench_ready_) return;
    auto init = run_command({kPgbench, "-i", "-s", "1", "-q", "-h", stack_.cluster->host(), "-p",
                             std::to_string(stack_.cluster->port()), "-U", kAppUser, kAppDatabase},
                            CommandOptions{120s, {{"PGPASSWORD", kAppPassword}}, ""});
    ASSERT_EQ(init.exit_code, 0) << init.err;
    pgbench_ready_ = true;
  }

  // pgbench -M prepared -c 20 -j 2 through max_prepared_statements: every transaction done, none failed.
  static void run_prepared_pgbench(std::vector<std::string> args, long transactions) {
    ASSERT_NO_FATAL_FAILURE(ensure_pgbench_tables());
    std::vector<std::string> all = {"-M", "prepared", "-c", "20"};
    all.insert(all.end(), args.begin(), args.end());
    if (std::find(all.begin(), all.end(), "-j") == all.end()) all.insert(all.end(), {"-j", "2"});
    CommandResult run = pgbench(kPrepDb, all);
    PgbenchSummary s = parse_pgbench(run.out);
    const std::string output = run.out + tail_lines(run.err, 20);
    EXPECT_EQ(run.exit_code, 0) << output;
    EXPECT_EQ(s.processed, transactions);
    EXPECT_EQ(s.expected, transactions);
    EXPECT_EQ(s.failed, 0);
    // pgbench only logs a failed Parse and carries on (the statement may exist on the server anyway).
    EXPECT_EQ(run.err.find("ERROR"), std::string::npos) << "pgbench logged errors:\n" << tail_lines(run.err, 20);
    expect_statements_bounded(kPrepDb);
  }

  // Runs a client program with the pooler's address and app's credentials for `db` on its command line.
  static CommandResult run_client(std::vector<std::string> argv, const std::string& db,
                                  std::vector<std::string> extra = {}) {
    std::vector<std::string> connection = {stack_.daemon->listen_addr(), std::to_string(stack_.daemon->port()),
                                           kAppUser, kAppPassword, db};
    argv.insert(argv.end(), connection.begin(), connection.end());
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run_command(argv, CommandOptions{180s, {}, ""});
  }

  static CommandResult run_python(const std::string& script, const std::string& db,
                                  std::vector<std::string> extra = {}) {
    return run_client({kPython, clients_dir() + "/" + script}, db, std::move(extra));
  }

  // A client program exited 0 and printed its summary line (a regex); its output is shown once otherwise.
  static void expect_client_ok(const CommandResult& r, const std::string& summary) {
    std::string hint;
    if (r.err.find("ModuleNotFoundError") != std::string::npos) hint = "\n(a Python module is missing: run scripts/deps.sh)";
    EXPECT_EQ(r.exit_code, 0) << r.out << tail_lines(r.err, 60) << hint;
    EXPECT_TRUE(std::regex_search(r.out, std::regex(summary))) << "no summary line matching /" << summary << "/";
  }

  // Compiles JdbcPrepared.java once per process into a temp dir; returns the classpath to run it with.
  static std::string jdbc_classpath() {
    if (!jdbc_classes_) {
      jdbc_classes_ = std::make_unique<TempDir>("jdbc-prepared-");
      CommandResult javac;
      try {
        javac = run_command({"javac", "-d", jdbc_classes_->path().string(), "-cp", kJdbcJar,
                             clients_dir() + "/JdbcPrepared.java"},
                            120s);
      } catch (const std::exception& e) {
        throw std::runtime_error(std::string(e.what()) + ": the JDK is missing, run scripts/deps.sh");
      }
      if (javac.exit_code != 0) {
        jdbc_classes_.reset();
        throw std::runtime_error("javac JdbcPrepared.java failed (run scripts/deps.sh for the JDK and "
                                 "libpostgresql-jdbc-java):\n" + javac.out + javac.err);
      }
    }
    return jdbc_classes_->path().string() + ":" + kJdbcJar;
  }

  static void run_jdbc(const std::string& threshold) {
    CommandResult r;
    try {
      r = run_client({"java", "-cp", jdbc_classpath(), "JdbcPrepared"}, kPrepDb, {threshold, "6"});
    } catch (const std::exception& e) {
      FAIL() << e.what() << " (run scripts/deps.sh to install the JDK)";
    }
    expect_client_ok(r, fmt::format(R"(jdbc [\d.]+ prepareThreshold={} threads=6 queries=\d+ server_prepared=\d+ ok\n)",
                                    threshold));
    expect_statements_bounded(kPrepDb);
  }

  // Prepares statement `name` on the client's current server connection and returns that backend's pid.
  static int prepare_and_learn_pid(PGconn* conn, const std::string& name, const std::string& sql) {
    if (PQenterPipelineMode(conn) != 1) throw std::runtime_error("PQenterPipelineMode failed");
    send_prepare(conn, name, sql);
    send_params(conn, "SELECT pg_backend_pid()", {});
    pipeline_sync(conn);
    PipelineReader read(conn);
    read.prepared();
    int pid = std::stoi(read.value());
    read.sync();
    if (PQexitPipelineMode(conn) != 1) throw std::runtime_error("PQexitPipelineMode failed");
    return pid;
  }

  inline static Stack stack_;
  inline static bool pgbench_ready_ = false;
  inline static std::unique_ptr<TempDir> jdbc_classes_;
  PgConnPtr admin_;
};

// ==== pgbench -M prepared ====

// Built-in select-only, -M prepared, 20 clients on 2 server connections: no failed transaction, and the
// server holds at most max_prepared_statements pooler-named statements per connection.
TEST_F(IntegrationPrepared, PgbenchPreparedSelectOnly) { run_prepared_pgbench({"-S", "-t", "100"}, 2000); }

// Built-in TPC-B-like, -M prepared (BEGIN, three UPDATEs, SELECT, INSERT, END): no failed transaction,
// one history row per transaction, statements bounded. One pgbench thread per client: pgbench prepares each
// command with a blocking PQprepare the first time a client runs it, and with several clients per thread
// that call can wait for a server connection held by another client of the same (now blocked) thread,
// inside that client's transaction: a deadlock in pgbench whatever the pooler does, once every server
// connection is inside such a transaction (it only ends with pool_timeout).
TEST_F(IntegrationPrepared, PgbenchPreparedTpcb) {
  ASSERT_NO_FATAL_FAILURE(ensure_pgbench_tables());
  exec_ok(admin_.get(), "TRUNCATE pgbench_history");
  run_prepared_pgbench({"-j", "20", "-t", "25"}, 500);
  EXPECT_EQ(query_value(admin_.get(), "SELECT count(*) FROM pgbench_history"), "500");
}

// A script of 16 distinct statements (more than the cache of 10, used round-robin so the LRU always
// evicts): every result is checked inside pgbench (a wrong one aborts the client), none fails, and the
// cache bound holds.
TEST_F(IntegrationPrepared, PgbenchPreparedEvictsLeastRecentlyUsed) {
  TempDir dir("pgbench-script-");
  std::string script = "\\set aid random(1, 100000)\n";
  for (int k = 1; k <= 16; ++k) {
    script += fmt::format("SELECT :aid + {} AS r \\gset\n\\if :r != :aid + {}\n\\set wrong_result 1 / 0\n\\endif\n", k, k);
  }
  const std::string path = (dir.path() / "sixteen.pgbench").string();
  std::ofstream(path) << script;
  run_prepared_pgbench({"-f", path, "-t", "20"}, 400);
}

// Control: the same -M prepared workload with max_prepared_statements = 0 (pass-through) goes wrong, since
// each client's statements stay on the server connection that prepared them: a client's Parse meets another
// client's statement of the same name ("already exists", which pgbench only logs) or its Bind finds none
// ("does not exist", which aborts the client). This is what the feature fixes.
TEST_F(IntegrationPrepared, PgbenchPreparedFailsWithoutTracking) {
  ASSERT_NO_FATAL_FAILURE(ensure_pgbench_tables());
  CommandResult run = pgbench(kNoPrepDb, {"-M", "prepared", "-S", "-c", "20", "-j", "2", "-t", "50"});
  PgbenchSummary s = parse_pgbench(run.out);
  const std::regex statement_error(R"(ERROR: +prepared statement "[^"]+" (already exists|does not exist))");
  const auto errors = std::distance(std::sregex_iterator(run.err.begin(), run.err.end(), statement_error),
                                    std::sregex_iterator());
  // At most one Parse per server connection can find the name free: the other clients' fail.
  EXPECT_GE(errors, 20 - kPoolSize) << "pass-through -M prepared unexpectedly worked:\n" << run.out << run.err;
  RecordProperty("pgbench_exit_code", run.exit_code);
  RecordProperty("pgbench_failed_transactions", static_cast<int>(s.failed));
}

// ==== real client libraries ====

// psycopg 3: execute(prepare=True) with autocommit and inside transactions, executemany (pipelined) and
// prepare_threshold = 0, 6 threads on 2 server connections; every result checked.
TEST_F(IntegrationPrepared, PsycopgPreparedStatements) {
  CommandResult r = run_python("psycopg_prepared.py", kPrepDb, {"--phase", "basic"});
  expect_client_ok(r, R"(psycopg [\d.]+ phase=basic threads=6 queries=\d+ ok\n)");
  expect_statements_bounded(kPrepDb);
}

// psycopg 3.1 sends the SQL `DEALLOCATE ALL` after every rollback once it has prepared statements: the
// other clients' statements on that server connection must survive it (threads roll back while others run).
TEST_F(IntegrationPrepared, PsycopgRollbackSendsDeallocateAll) {
  CommandResult r = run_python("psycopg_prepared.py", kPrepDb, {"--phase", "rollback"});
  expect_client_ok(r, R"(psycopg [\d.]+ phase=rollback threads=6 queries=\d+ ok\n)");
  expect_statements_bounded(kPrepDb);
}

// psycopg with prepared_max = 4 and 8 statements sends the SQL `DEALLOCATE _pg3_N` for each one it evicts
// from its own cache: that must work for statements the pooler renamed.
TEST_F(IntegrationPrepared, PsycopgEvictionSendsDeallocate) {
  CommandResult r = run_python("psycopg_prepared.py", kPrepDb, {"--phase", "evict"});
  expect_client_ok(r, R"(psycopg [\d.]+ phase=evict threads=6 queries=\d+ ok\n)");
  expect_statements_bounded(kPrepDb);
}

// asyncpg (named statements always): prepare() + fetch/fetchval, cached statements with arguments,
// executemany, transactions, and a statement cache of 4 that closes (protocol Close) what it evicts;
// 8 connections concurrently on 2 server connections.
TEST_F(IntegrationPrepared, AsyncpgPreparedStatements) {
  CommandResult r = run_python("asyncpg_prepared.py", kPrepDb);
  expect_client_ok(r, R"(asyncpg [\d.]+ connections=8 queries=\d+ ok\n)");
  expect_statements_bounded(kPrepDb);
}

// JDBC with the default prepareThreshold (5): PreparedStatements executed 20 times switch to named server
// statements; 6 threads, autocommit on and off, batches, rollback; every statement went server-prepared.
TEST_F(IntegrationPrepared, JdbcDefaultPrepareThreshold) { run_jdbc("default"); }

// JDBC with prepareThreshold=1: named server statements from the first execution.
TEST_F(IntegrationPrepared, JdbcPrepareThresholdOne) { run_jdbc("1"); }

// ==== pipelines and extended-protocol corners ====

// 1000 PQsendQueryParams in libpq pipeline mode, with and without statement tracking: with one Sync, and
// with a Sync after every 100 (ten transactions in flight at once) while another client competes for the two
// server connections. Every result arrives, in order and right.
TEST_F(IntegrationPrepared, PipelineThousandStatements) {
  for (const char* db : {kNoPrepDb, kPrepDb}) {
    for (int syncs : {1, 10}) {
      SCOPED_TRACE(fmt::format("{}, {} Sync(s)", db, syncs));
      const int per_sync = 1000 / syncs;
      std::optional<Rival> rival;
      if (syncs > 1) rival.emplace(conninfo(db));
      PgConnPtr conn = client(db);
      ASSERT_EQ(PQenterPipelineMode(conn.get()), 1);
      for (int i = 0; i < 1000; ++i) {
        send_params(conn.get(), "SELECT $1::int * 3", {std::to_string(i)});
        if ((i + 1) % per_sync == 0) pipeline_sync(conn.get());
      }
      PipelineReader read(conn.get());
      for (int i = 0; i < 1000; ++i) {
        ASSERT_EQ(read.value(), std::to_string(i * 3)) << "statement " << i;
        if ((i + 1) % per_sync == 0) read.sync();
      }
      ASSERT_EQ(PQexitPipelineMode(conn.get()), 1);
      EXPECT_EQ(query_value(conn.get(), "SELECT 'after'"), "after");
      if (rival) {
        EXPECT_GE(rival->stop(), 0);
      }
    }
  }
}

// PQsendPrepare of a named statement and 1000 PQsendQueryPrepared of it in one pipeline with one Sync,
// with and without tracking; and with tracking also with ten Syncs (the pooler may hand the server connection
// back between two of them when the next has not arrived yet, so only tracking makes that work), after
// which the statement is used again in later transactions.
TEST_F(IntegrationPrepared, PipelineNamedStatementThousandExecutions) {
  int serial = 0;
  for (const char* db : {kNoPrepDb, kPrepDb}) {
    for (int syncs : {1, 10}) {
      if (syncs > 1 && std::string(db) == kNoPrepDb) continue;
      SCOPED_TRACE(fmt::format("{}, {} Sync(s)", db, syncs));
      PgConnPtr conn = client(db);
      // Unique per run: in the pass-through database the statement stays on its server connection.
      const std::string name = fmt::format("pipelined_{}", ++serial);
      ASSERT_EQ(PQenterPipelineMode(conn.get()), 1);
      send_prepare(conn.get(), name, "SELECT $1::int - 5");
      for (int i = 0; i < 1000; ++i) {
        send_prepared(conn.get(), name, {std::to_string(i)});
        if ((i + 1) % (1000 / syncs) == 0) pipeline_sync(conn.get());
      }
      PipelineReader read(conn.get());
      read.prepared();
      for (int i = 0; i < 1000; ++i) {
        ASSERT_EQ(read.value(), std::to_string(i - 5)) << "execution " << i;
        if ((i + 1) % (1000 / syncs) == 0) read.sync();
      }
      ASSERT_EQ(PQexitPipelineMode(conn.get()), 1);
      if (std::string(db) == kPrepDb) {
        for (int i = 0; i < 5; ++i) {
          std::string v = std::to_string(i);
          const char* params[] = {v.c_str()};
          PgResultPtr r(PQexecPrepared(conn.get(), name.c_str(), 1, params, nullptr, nullptr, 0));
          ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQresultErrorMessage(r.get());
          EXPECT_EQ(std::string(PQgetvalue(r.get(), 0, 0)), std::to_string(i - 5));
        }
      }
    }
  }
  expect_statements_bounded(kPrepDb);
}

// A statement prepared on one server connection is executed (and described, and used inside a transaction)
// after the client was moved to the other one: the pooler prepares it there first. Without tracking (the
// control) the statement does not exist there.
TEST_F(IntegrationPrepared, NamedStatementFollowsClientToAnotherConnection) {
  {
    SCOPED_TRACE("without tracking");
    PgConnPtr a = client(kNoPrepDb);
    const int first = prepare_and_learn_pid(a.get(), "lost_statement", "SELECT $1::int + 1000");
    PgConnPtr holder = occupy(kNoPrepDb, first);
    PgResultPtr r = exec_prepared(a.get(), "lost_statement", {"5"});
    EXPECT_EQ(PQresultStatus(r.get()), PGRES_FATAL_ERROR);
    EXPECT_EQ(sqlstate(r.get()), "26000") << PQresultErrorMessage(r.get());
  }
  PgConnPtr a = client(kPrepDb);
  const int first = prepare_and_learn_pid(a.get(), "add_thousand", "SELECT $1::int + 1000");
  PgConnPtr holder = occupy(kPrepDb, first);

  ASSERT_EQ(PQenterPipelineMode(a.get()), 1);
  send_prepared(a.get(), "add_thousand", {"5"});
  send_params(a.get(), "SELECT pg_backend_pid()", {});
  pipeline_sync(a.get());
  PipelineReader read(a.get());
  EXPECT_EQ(read.value(), "1005");
  EXPECT_NE(std::stoi(read.value()), first) << "the client was not moved to the other server connection";
  read.sync();
  ASSERT_EQ(PQexitPipelineMode(a.get()), 1);

  // Describe of the statement (a round trip of its own).
  PgResultPtr d(PQdescribePrepared(a.get(), "add_thousand"));
  ASSERT_EQ(PQresultStatus(d.get()), PGRES_COMMAND_OK) << PQresultErrorMessage(d.get());
  EXPECT_EQ(PQnparams(d.get()), 1);
  EXPECT_EQ(PQparamtype(d.get(), 0), 23u);  // int4
  EXPECT_EQ(PQnfields(d.get()), 1);

  // Inside an explicit transaction: a second statement, prepared on the connection `a` was just moved to,
  // is executed on the first one.
  const int second = prepare_and_learn_pid(a.get(), "times_two", "SELECT $1::int * 2");
  EXPECT_NE(second, first);
  exec_ok(holder.get(), "COMMIT");
  holder = occupy(kPrepDb, second);
  exec_ok(a.get(), "BEGIN");
  const char* params[] = {"21"};
  PgResultPtr r(PQexecPrepared(a.get(), "times_two", 1, params, nullptr, nullptr, 0));
  ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQresultErrorMessage(r.get());
  EXPECT_EQ(std::string(PQgetvalue(r.get(), 0, 0)), "42");
  EXPECT_EQ(backend_pid(a.get()), first);
  exec_ok(a.get(), "COMMIT");
  holder.reset();
  expect_statements_bounded(kPrepDb);
}

// Two clients use the same statement name for different statements, on both server connections in turn:
// each always gets its own statement.
TEST_F(IntegrationPrepared, SameNameDifferentStatementsInTwoClients) {
  PgConnPtr a = client(kPrepDb);
  PgConnPtr b = client(kPrepDb);
  const int pid_a = prepare_and_learn_pid(a.get(), "stmt", "SELECT 'a:' || $1::text");
  const int pid_b = prepare_and_learn_pid(b.get(), "stmt", "SELECT 'b:' || ($1::int * 2)::text");
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(fmt::format("round {}", round));
    for (int pid : {pid_a, pid_b}) {
      PgConnPtr holder = occupy(kPrepDb, pid);  // both clients run on the other server connection
      EXPECT_EQ(prepared_value(a.get(), "stmt", {"5"}), "a:5");
      EXPECT_EQ(prepared_value(b.get(), "stmt", {"5"}), "b:10");
    }
    EXPECT_EQ(prepared_value(b.get(), "stmt", {"7"}), "b:14");
    EXPECT_EQ(prepared_value(a.get(), "stmt", {"7"}), "a:7");
  }
  expect_statements_bounded(kPrepDb);
}

// A Parse of a name the client already uses fails with 42P05 as it would on the server, and the statement
// the name stands for is unchanged.
TEST_F(IntegrationPrepared, ParseOfNameInUseFailsAsOnServer) {
  PgConnPtr a = client(kPrepDb);
  PgResultPtr first(PQprepare(a.get(), "taken", "SELECT 'first'", 0, nullptr));
  ASSERT_EQ(PQresultStatus(first.get()), PGRES_COMMAND_OK) << PQresultErrorMessage(first.get());
  PgResultPtr again(PQprepare(a.get(), "taken", "SELECT 'second'", 0, nullptr));
  EXPECT_EQ(PQresultStatus(again.get()), PGRES_FATAL_ERROR);
  EXPECT_EQ(sqlstate(again.get()), "42P05") << PQresultErrorMessage(again.get());
  EXPECT_EQ(prepared_value(a.get(), "taken", {}), "first");
}

// DEALLOCATE of a client's name (simple query) frees the name for another statement; DEALLOCATE ALL forgets
// all its names (executing one then fails with 26000, as on the server), and neither disturbs another
// client's statement on the same server connection.
TEST_F(IntegrationPrepared, DeallocateForgetsTheClientsNames) {
  PgConnPtr a = client(kPrepDb);
  PgConnPtr b = client(kPrepDb);
  const int pid = prepare_and_learn_pid(a.get(), "mine", "SELECT 'old'");
  PgConnPtr holder = occupy_other_than(kPrepDb, pid);  // everything below runs on `pid`
  ASSERT_EQ(prepare_and_learn_pid(b.get(), "theirs", "SELECT 'theirs:' || $1::text"), pid);
  exec_ok(a.get(), "DEALLOCATE mine");
  PgResultPtr renewed(PQprepare(a.get(), "mine", "SELECT 'new'", 0, nullptr));
  ASSERT_EQ(PQresultStatus(renewed.get()), PGRES_COMMAND_OK) << PQresultErrorMessage(renewed.get());
  EXPECT_EQ(prepared_value(a.get(), "mine", {}), "new");
  PgResultPtr other(PQprepare(a.get(), "other", "SELECT 'other'", 0, nullptr));
  ASSERT_EQ(PQresultStatus(other.get()), PGRES_COMMAND_OK) << PQresultErrorMessage(other.get());
  exec_ok(a.get(), "DEALLOCATE ALL");
  for (const char* name : {"mine", "other"}) {
    PgResultPtr gone = exec_prepared(a.get(), name, {});
    EXPECT_EQ(sqlstate(gone.get()), "26000") << name << ": " << PQresultErrorMessage(gone.get());
  }
  EXPECT_EQ(prepared_value(b.get(), "theirs", {"1"}), "theirs:1");
  EXPECT_EQ(backend_pid(b.get()), pid);
}

// DISCARD ALL (outside a transaction) drops everything prepared on that server connection: the client's own
// names are gone afterwards (26000, as on the server), while another client's statement there is prepared
// again by the pooler when next used.
TEST_F(IntegrationPrepared, DiscardAllForgetsOnlyTheClientsNames) {
  PgConnPtr a = client(kPrepDb);
  PgConnPtr b = client(kPrepDb);
  const int pid = prepare_and_learn_pid(a.get(), "mine", "SELECT 'mine'");
  PgConnPtr holder = occupy_other_than(kPrepDb, pid);
  ASSERT_EQ(prepare_and_learn_pid(b.get(), "theirs", "SELECT 'theirs'"), pid);
  exec_ok(a.get(), "DISCARD ALL");
  PgResultPtr gone = exec_prepared(a.get(), "mine", {});
  EXPECT_EQ(sqlstate(gone.get()), "26000") << PQresultErrorMessage(gone.get());
  EXPECT_EQ(prepared_value(b.get(), "theirs", {}), "theirs");
  EXPECT_EQ(backend_pid(b.get()), pid);
  holder.reset();
  expect_statements_bounded(kPrepDb);
}

// An error in the middle of a pipeline: the statements after it up to the Sync come back
// PGRES_PIPELINE_ABORTED, and the next Sync's work runs normally. Both databases.
TEST_F(IntegrationPrepared, PipelineErrorSkipsToNextSync) {
  for (const char* db : {kNoPrepDb, kPrepDb}) {
    SCOPED_TRACE(db);
    PgConnPtr conn = client(db);
    ASSERT_EQ(PQenterPipelineMode(conn.get()), 1);
    send_params(conn.get(), "SELECT $1::int", {"1"});
    send_params(conn.get(), "SELECT 1 / $1::int", {"0"});
    send_params(conn.get(), "SELECT $1::int", {"3"});
    pipeline_sync(conn.get());
    send_params(conn.get(), "SELECT $1::int", {"4"});
    pipeline_sync(conn.get());
    PipelineReader read(conn.get());
    EXPECT_EQ(read.value(), "1");
    PgResultPtr error = read.query();
    EXPECT_EQ(PQresultStatus(error.get()), PGRES_FATAL_ERROR);
    EXPECT_EQ(sqlstate(error.get()), "22012");
    EXPECT_EQ(PQresultStatus(read.query().get()), PGRES_PIPELINE_ABORTED);
    read.sync();
    EXPECT_EQ(read.value(), "4");
    read.sync();
    ASSERT_EQ(PQexitPipelineMode(conn.get()), 1);
    EXPECT_EQ(PQtransactionStatus(conn.get()), PQTRANS_IDLE);
    EXPECT_EQ(query_value(conn.get(), "SELECT 'after'"), "after");
  }
}

// The same with a named statement, on a connection where the pooler must prepare it first: the server skips
// that preparation (it follows the error), so the pooler must not count the statement as prepared there.
TEST_F(IntegrationPrepared, PipelineErrorBeforeStatementPreparedByThePooler) {
  PgConnPtr a = client(kPrepDb);
  const int first = prepare_and_learn_pid(a.get(), "square", "SELECT $1::int * $1::int");
  PgConnPtr holder = occupy(kPrepDb, first);
  ASSERT_EQ(PQenterPipelineMode(a.get()), 1);
  send_params(a.get(), "SELECT 1 / $1::int", {"0"});
  send_prepared(a.get(), "square", {"7"});  // needs a Parse on this connection; skipped by the server
  pipeline_sync(a.get());
  send_prepared(a.get(), "square", {"8"});
  send_params(a.get(), "SELECT pg_backend_pid()", {});
  pipeline_sync(a.get());

  PipelineReader read(a.get());
  EXPECT_EQ(sqlstate(read.query().get()), "22012");
  EXPECT_EQ(PQresultStatus(read.query().get()), PGRES_PIPELINE_ABORTED);
  read.sync();
  EXPECT_EQ(read.value("square(8), first use after the failed group"), "64");
  EXPECT_NE(std::stoi(read.value()), first);
  read.sync();
  ASSERT_EQ(PQexitPipelineMode(a.get()), 1);
  holder.reset();
  expect_statements_bounded(kPrepDb);
}

// A Parse that fails (syntax error), in a pipeline or on its own, creates nothing: the name is free for the
// next Parse, and statements after the error up to the Sync are skipped.
TEST_F(IntegrationPrepared, FailedParseLeavesNameFree) {
  PgConnPtr a = client(kPrepDb);
  PgResultPtr bad(PQprepare(a.get(), "alone", "SELEC 1", 0, nullptr));
  EXPECT_EQ(sqlstate(bad.get()), "42601") << PQresultErrorMessage(bad.get());
  PgResultPtr good(PQprepare(a.get(), "alone", "SELECT 'alone'", 0, nullptr));
  ASSERT_EQ(PQresultStatus(good.get()), PGRES_COMMAND_OK) << PQresultErrorMessage(good.get());
  EXPECT_EQ(prepared_value(a.get(), "alone", {}), "alone");

  ASSERT_EQ(PQenterPipelineMode(a.get()), 1);
  send_prepare(a.get(), "piped", "SELECT $1::int + 1");
  send_prepare(a.get(), "broken", "SELEC 1");  // a syntax error
  send_prepared(a.get(), "piped", {"1"});      // aborted
  pipeline_sync(a.get());
  send_prepare(a.get(), "broken", "SELECT $1::int + 2");
  send_prepared(a.get(), "broken", {"40"});
  send_prepared(a.get(), "piped", {"41"});
  pipeline_sync(a.get());
  PipelineReader read(a.get());
  read.prepared("Parse of piped");
  PgResultPtr syntax = read.query();
  EXPECT_EQ(sqlstate(syntax.get()), "42601") << PQresultErrorMessage(syntax.get());
  EXPECT_EQ(PQresultStatus(read.query().get()), PGRES_PIPELINE_ABORTED);
  read.sync();
  read.prepared("Parse of the name whose first Parse failed");
  EXPECT_EQ(read.value("broken(40)"), "42");
  EXPECT_EQ(read.value("piped(41)"), "42");
  read.sync();
  ASSERT_EQ(PQexitPipelineMode(a.get()), 1);
}

// The Flush message: after PQsendFlushRequest the results come before any Sync (a prepare, an unnamed
// statement, and in the tracking database a named statement the pooler must first prepare on the new
// server connection); then the Sync completes the transaction.
TEST_F(IntegrationPrepared, FlushDeliversResultsBeforeSync) {
  for (const char* db : {kNoPrepDb, kPrepDb}) {
    SCOPED_TRACE(db);
    PgConnPtr conn = client(db);
    const std::string name = std::string("flushed_") + db;
    ASSERT_EQ(PQenterPipelineMode(conn.get()), 1);
    send_prepare(conn.get(), name, "SELECT $1::int * 10");
    ASSERT_EQ(PQsendFlushRequest(conn.get()), 1);
    ASSERT_EQ(PQflush(conn.get()), 0);
    PipelineReader read(conn.get(), 20s);
    read.prepared();
    send_params(conn.get(), "SELECT $1::text", {"flushed"});
    ASSERT_EQ(PQsendFlushRequest(conn.get()), 1);
    ASSERT_EQ(PQflush(conn.get()), 0);
    EXPECT_EQ(read.value(), "flushed");
    send_prepared(conn.get(), name, {"4"});
    ASSERT_EQ(PQsendFlushRequest(conn.get()), 1);
    ASSERT_EQ(PQflush(conn.get()), 0);
    EXPECT_EQ(read.value(), "40");
    pipeline_sync(conn.get());
    read.sync();
    ASSERT_EQ(PQexitPipelineMode(conn.get()), 1);
  }
  // A named statement on a server connection that has not seen it, answered before the Sync.
  PgConnPtr a = client(kPrepDb);
  const int first = prepare_and_learn_pid(a.get(), "flush_moved", "SELECT $1::int + 2");
  PgConnPtr holder = occupy(kPrepDb, first);
  ASSERT_EQ(PQenterPipelineMode(a.get()), 1);
  send_prepared(a.get(), "flush_moved", {"40"});
  ASSERT_EQ(PQsendFlushRequest(a.get()), 1);
  ASSERT_EQ(PQflush(a.get()), 0);
  PipelineReader read(a.get(), 20s);
  EXPECT_EQ(read.value(), "42");
  send_params(a.get(), "SELECT pg_backend_pid()", {});
  pipeline_sync(a.get());
  EXPECT_NE(std::stoi(read.value()), first);
  read.sync();
  ASSERT_EQ(PQexitPipelineMode(a.get()), 1);
}

// ==== COPY ====

// COPY of 100 MB in and then out through the pooler, with the server stalled (in) and the client not
// reading (out) part way, so that only backpressure keeps the daemon from buffering it all: the rows arrive
// intact both ways and the daemon's peak memory grows by less than 32 MiB.
TEST_F(IntegrationPrepared, CopyHundredMegabytesInAndOutWithFlatMemory) {
  constexpr long kBoundKib = 32 * 1024;
  const std::uint64_t total = CopyRows::total_bytes();
  ASSERT_GE(total, 100'000'000u);
  // A daemon of its own, so that its peak memory so far is only start-up and this test. Under ASan, freed
  // blocks wait in a quarantine of up to 256 MiB before reuse, which would count the allocator's churn as
  // the daemon's buffering; a small quarantine keeps the measure about what the daemon holds.
  const char* asan = std::getenv("ASAN_OPTIONS");
  std::string asan_options = (asan != nullptr && *asan != '\0') ? std::string(asan) + ":" : std::string();
  DaemonProcess daemon(suite_config(*stack_.cluster), {{"ASAN_OPTIONS", asan_options + "quarantine_size_mb=2"}});
  const pid_t pid = daemon.pid();
  PgConnPtr conn = connect(pooler_conninfo(daemon, kAppUser, kAppPassword, kPrepDb));
  exec_ok(conn.get(), "DROP TABLE IF EXISTS copy_data; CREATE TABLE copy_data (id int PRIMARY KEY, payload text)");
  const long hwm_before = proc_status_kib(pid, "VmHWM");

  // --- in: the server blocks on row 5000 (a conflicting uncommitted insert) while the client keeps sending.
  exec_ok(admin_.get(), "BEGIN; INSERT INTO copy_data VALUES (5000, 'blocker')");
  bool blocker_open = true;
  ASSERT_EQ(PQsetnonblocking(conn.get(), 1), 0);
  ASSERT_EQ(PQsendQuery(conn.get(), "COPY copy_data (id, payload) FROM STDIN"), 1);
  const auto deadline = Clock::now() + 240s;
  {
    PgResultPtr start(next_result(conn.get(), deadline));
    ASSERT_TRUE(start);
    ASSERT_EQ(PQresultStatus(start.get()), PGRES_COPY_IN) << PQresultErrorMessage(start.get());
  }
  CopyRows rows;
  std::string chunk;
  std::uint64_t sent = 0;
  std::optional<std::uint64_t> sent_when_stalled;
  long rss_stalled_in = 0;
  while (!rows.done()) {
    chunk.clear();
    rows.append(chunk, 256 * 1024);
    ASSERT_EQ(PQputCopyData(conn.get(), chunk.data(), static_cast<int>(chunk.size())), 1) << PQerrorMessage(conn.get());
    sent += chunk.size();
    int flushed;
    while ((flushed = PQflush(conn.get())) == 1) {
      ASSERT_LT(Clock::now(), deadline) << "COPY FROM STDIN did not finish";
      pollfd pfd{PQsocket(conn.get()), POLLOUT, 0};
      if (::poll(&pfd, 1, 1000) > 0 || !blocker_open) continue;
      // Nothing moved for a second. If the server is waiting for the blocker, the whole path is full:
      // see what the daemon holds now, then let the server go on.
      bool server_waits = query_value(admin_.get(),
                                      "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app' AND "
                                      "wait_event_type = 'Lock' AND query LIKE 'COPY copy_data%'") == "1";
      if (!server_waits) continue;
      rss_stalled_in = proc_status_kib(pid, "VmRSS");
      sent_when_stalled = sent;
      exec_ok(admin_.get(), "ROLLBACK");
      blocker_open = false;
    }
    ASSERT_EQ(flushed, 0) << PQerrorMessage(conn.get());
  }
  if (blocker_open) {
    exec_ok(admin_.get(), "ROLLBACK");
    blocker_open = false;
  }
  EXPECT_TRUE(sent_when_stalled.has_value())
      << "the client sent all " << sent << " bytes while the server was blocked: the daemon buffered them";
  ASSERT_EQ(PQputCopyEnd(conn.get(), nullptr), 1);
  {
    PgResultPtr done(next_result(conn.get(), deadline));
    ASSERT_TRUE(done);
    ASSERT_EQ(PQresultStatus(done.get()), PGRES_COMMAND_OK) << PQresultErrorMessage(done.get());
    EXPECT_EQ(std::string(PQcmdTuples(done.get())), std::to_string(kCopyRows));
    PgResultPtr end(next_result(conn.get(), deadline));
    EXPECT_FALSE(end);
  }
  ASSERT_EQ(PQsetnonblocking(conn.get(), 0), 0);
  // The server has exactly the rows sent: count, ids, and every payload rebuilt from its id.
  PgResultPtr check = exec_ok(admin_.get(), fmt::format("SELECT count(*), sum(id::bigint), count(*) FILTER (WHERE "
                                                        "payload <> substr({}, (id::bigint * {} % {})::int + 1, {})) "
                                                        "FROM copy_data",
                                                        quote_literal(copy_letters()), kOffsetFactor,
                                                        copy_letters().size() - kPayloadLength, kPayloadLength));
  EXPECT_EQ(std::string(PQgetvalue(check.get(), 0, 0)), std::to_string(kCopyRows));
  EXPECT_EQ(std::string(PQgetvalue(check.get(), 0, 1)),
            std::to_string(std::uint64_t(kCopyRows) * (kCopyRows + 1) / 2));
  EXPECT_EQ(std::string(PQgetvalue(check.get(), 0, 2)), "0") << "payloads differ from what was sent";

  // --- out: the client does not read until the server is blocked writing, then reads everything.
  ASSERT_EQ(PQsetnonblocking(conn.get(), 1), 0);
  ASSERT_EQ(PQsendQuery(conn.get(), "COPY (SELECT id, payload FROM copy_data ORDER BY id) TO STDOUT"), 1);
  ASSERT_EQ(PQflush(conn.get()), 0);
  {
    PgResultPtr start(next_result(conn.get(), deadline));
    ASSERT_TRUE(start);
    ASSERT_EQ(PQresultStatus(start.get()), PGRES_COPY_OUT) << PQresultErrorMessage(start.get());
  }
  const bool server_blocked = eventually(
      [&] {
        return query_value(admin_.get(),
                           "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app' AND "
                           "wait_event = 'ClientWrite' AND query LIKE 'COPY (SELECT%'") == "1";
      },
      60s);
  EXPECT_TRUE(server_blocked) << "the server never had to wait for the daemon: it buffered the whole COPY TO";
  const long rss_stalled_out = proc_status_kib(pid, "VmRSS");
  CopyChecker checker;
  for (;;) {
    char* buffer = nullptr;
    int n = PQgetCopyData(conn.get(), &buffer, 1);
    if (n > 0) {
      checker.feed(std::string_view(buffer, static_cast<std::size_t>(n)));
      PQfreemem(buffer);
      continue;
    }
    if (n == -1) break;  // done
    ASSERT_EQ(n, 0) << PQerrorMessage(conn.get());
    ASSERT_LT(Clock::now(), deadline) << "COPY TO STDOUT did not finish; " << checker.describe();
    pollfd pfd{PQsocket(conn.get()), POLLIN, 0};
    ::poll(&pfd, 1, 1000);
    ASSERT_EQ(PQconsumeInput(conn.get()), 1) << PQerrorMessage(conn.get());
  }
  {
    PgResultPtr done(next_result(conn.get(), deadline));
    ASSERT_TRUE(done);
    ASSERT_EQ(PQresultStatus(done.get()), PGRES_COMMAND_OK) << PQresultErrorMessage(done.get());
    EXPECT_EQ(std::string(PQcmdTuples(done.get())), std::to_string(kCopyRows));
  }
  EXPECT_TRUE(checker.complete()) << checker.describe();
  EXPECT_EQ(checker.received(), total);
  ASSERT_EQ(PQsetnonblocking(conn.get(), 0), 0);
  EXPECT_EQ(query_value(conn.get(), "SELECT 'usable'"), "usable");

  const long hwm_after = proc_status_kib(pid, "VmHWM");
  RecordProperty("daemon_hwm_growth_kib", static_cast<int>(hwm_after - hwm_before));
  std::cerr << fmt::format("daemon memory: VmHWM {} -> {} KiB; VmRSS while stalled: in {} KiB (client had sent {} "
                           "bytes), out {} KiB\n",
                           hwm_before, hwm_after, rss_stalled_in, sent_when_stalled.value_or(0), rss_stalled_out);
  EXPECT_LT(hwm_after - hwm_before, kBoundKib) << "the daemon's peak memory grew with the COPY";
  if (sent_when_stalled) {
    EXPECT_LT(rss_stalled_in - hwm_before, kBoundKib);
  }
  EXPECT_LT(rss_stalled_out - hwm_before, kBoundKib);
  conn.reset();
  EXPECT_EQ(daemon.stop(), 0) << daemon.log_tail();
}

// ==== timeouts and LISTEN ====

// query_timeout = 1: pg_sleep(60) is cancelled on the server after about a second, the client gets the
// server's 57014, and the same connection goes on working; simple and extended protocol, and inside an
// explicit transaction (which is then aborted, as with statement_timeout).
TEST_F(IntegrationPrepared, QueryTimeoutCancelsAndConnectionStaysUsable) {
  PgConnPtr conn = client(kQueryTimeoutDb);
  PgResultPtr p(PQprepare(conn.get(), "sleeper", "SELECT pg_sleep($1::float8)::text || 'woke'", 0, nullptr));
  ASSERT_EQ(PQresultStatus(p.get()), PGRES_COMMAND_OK) << PQresultErrorMessage(p.get());
  // Sends a 60 s request (right after the previous one: each gets the whole timeout), expects 57014 within a
  // few seconds but not before the second is up, and that nothing keeps sleeping on the server.
  auto expect_cancelled = [&](const std::function<void()>& send) {
    const auto started = Clock::now();
    send();
    PgResultPtr r = last_result(conn.get(), 30s);
    const auto took = Clock::now() - started;
    ASSERT_TRUE(r) << PQerrorMessage(conn.get());
    EXPECT_EQ(PQresultStatus(r.get()), PGRES_FATAL_ERROR);
    EXPECT_EQ(sqlstate(r.get()), "57014") << PQresultErrorMessage(r.get());
    EXPECT_GE(took, 900ms);
    EXPECT_LT(took, 15s);
    EXPECT_EQ(PQstatus(conn.get()), CONNECTION_OK);
    EXPECT_TRUE(eventually(
        [&] {
          return query_value(admin_.get(), "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND "
                                           "query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()") == "0";
        },
        10s))
        << "pg_sleep still running on the server";
  };
  {
    SCOPED_TRACE("simple query");
    expect_cancelled([&] { ASSERT_EQ(PQsendQuery(conn.get(), "SELECT pg_sleep(60)"), 1); });
    EXPECT_EQ(query_value(conn.get(), "SELECT 1"), "1");
  }
  {
    SCOPED_TRACE("extended protocol");
    expect_cancelled([&] { send_params(conn.get(), "SELECT pg_sleep($1::float8)", {"60"}); });
    EXPECT_EQ(query_value(conn.get(), "SELECT 2"), "2");
  }
  {
    SCOPED_TRACE("named statement");
    expect_cancelled([&] { send_prepared(conn.get(), "sleeper", {"60"}); });
    EXPECT_EQ(prepared_value(conn.get(), "sleeper", {"0"}), "woke");
  }
  {
    SCOPED_TRACE("inside a transaction");
    exec_ok(conn.get(), "BEGIN");
    expect_cancelled([&] { ASSERT_EQ(PQsendQuery(conn.get(), "SELECT pg_sleep(60)"), 1); });
    EXPECT_EQ(PQtransactionStatus(conn.get()), PQTRANS_INERROR);
    exec_ok(conn.get(), "ROLLBACK");
    EXPECT_EQ(query_value(conn.get(), "SELECT 3"), "3");
  }
}

// idle_transaction_timeout = 1: a client that takes a lock inside a transaction and goes idle is
// disconnected with FATAL 25P03, its lock is released, its later queries fail, while a client idle outside
// any transaction for as long is untouched.
TEST_F(IntegrationPrepared, IdleInTransactionClientIsDisconnected) {
  exec_ok(admin_.get(), "DROP TABLE IF EXISTS idle_lock; CREATE TABLE idle_lock (v int); GRANT ALL ON idle_lock TO app");
  PgConnPtr bystander = client(kIdleTimeoutDb);
  EXPECT_EQ(query_value(bystander.get(), "SELECT 1"), "1");

  PgConnPtr idler = client(kIdleTimeoutDb);
  ClosedByPooler watch(idler.get());
  exec_ok(idler.get(), "BEGIN; LOCK TABLE idle_lock IN ACCESS EXCLUSIVE MODE");
  const auto idle_since = Clock::now();
  ASSERT_TRUE(watch.wait(10s)) << "the idle-in-transaction client was not disconnected within 10 s";
  EXPECT_GE(Clock::now() - idle_since, 900ms);
  EXPECT_TRUE(watch.got("25P03")) << "no 25P03 before the close; got: " << watch.describe();
  PgResultPtr after(PQexec(idler.get(), "SELECT 1"));
  EXPECT_NE(PQresultStatus(after.get()), PGRES_TUPLES_OK);

  EXPECT_TRUE(eventually([&] {
    return query_value(admin_.get(), "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                                     "WHERE c.relname = 'idle_lock'") == "0";
  })) << "the disconnected client's lock is still held";
  PgConnPtr next = client(kIdleTimeoutDb);
  exec_ok(next.get(), "BEGIN; LOCK TABLE idle_lock IN ACCESS EXCLUSIVE MODE NOWAIT; COMMIT");
  EXPECT_EQ(query_value(admin_.get(), "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app' AND "
                                      "state LIKE 'idle in transaction%'"),
            "0");
  // Idle (outside a transaction) longer than the timeout, and still served.
  EXPECT_EQ(query_value(bystander.get(), "SELECT 2"), "2");
}

// idle_transaction_timeout = 1 counts only time the client is idle: a transaction whose statement runs
// 2.5 s (sent pipelined, so the client is never idle in between) is not cut off.
TEST_F(IntegrationPrepared, BusyTransactionIsNotIdle) {
  PgConnPtr conn = client(kIdleTimeoutDb);
  ASSERT_EQ(PQenterPipelineMode(conn.get()), 1);
  send_params(conn.get(), "BEGIN", {});
  pipeline_sync(conn.get());
  send_params(conn.get(), "SELECT pg_sleep(2.5)::text || 'slept'", {});
  pipeline_sync(conn.get());
  send_params(conn.get(), "COMMIT", {});
  pipeline_sync(conn.get());
  PipelineReader read(conn.get(), 30s);
  EXPECT_EQ(PQresultStatus(read.query().get()), PGRES_COMMAND_OK);
  read.sync();
  EXPECT_EQ(read.value(), "slept");
  read.sync();
  EXPECT_EQ(PQresultStatus(read.query().get()), PGRES_COMMAND_OK);
  read.sync();
  ASSERT_EQ(PQexitPipelineMode(conn.get()), 1);
  EXPECT_EQ(query_value(conn.get(), "SELECT 'still here'"), "still here");
}

// An extended-protocol request answered through Flush but never Synced keeps the server's implicit
// transaction open and the server connection linked: once idle that long it is treated like any other idle
// transaction (else one client could pin a server connection forever).
TEST_F(IntegrationPrepared, UnsyncedExtendedQueryIsIdleInTransaction) {
  PgConnPtr idler = client(kIdleTimeoutDb);
  ClosedByPooler watch(idler.get());
  ASSERT_EQ(PQenterPipelineMode(idler.get()), 1);
  send_params(idler.get(), "SELECT $1::int", {"1"});
  ASSERT_EQ(PQsendFlushRequest(idler.get()), 1);
  ASSERT_EQ(PQflush(idler.get()), 0);
  PipelineReader read(idler.get(), 20s);
  EXPECT_EQ(read.value(), "1");
  const auto idle_since = Clock::now();
  ASSERT_TRUE(watch.wait(10s)) << "a client idle after an unsynced request kept its server connection for 10 s";
  EXPECT_GE(Clock::now() - idle_since, 900ms);
  EXPECT_TRUE(watch.got("25P03")) << "no 25P03 before the close; got: " << watch.describe();
  EXPECT_TRUE(eventually([&] {
    return query_value(admin_.get(), "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app' AND "
                                     "state LIKE 'idle in transaction%'") == "0";
  }));
}

// LISTEN in transaction mode is refused with 0A000 (a notification could not reach the client once its
// server connection is someone else's), through the simple and the extended protocol; the session stays
// usable and no server connection listens.
TEST_F(IntegrationPrepared, ListenRefusedInTransactionMode) {
  PgConnPtr conn = client(kPrepDb);
  for (const char* sql : {"LISTEN pooler_channel", "  listen pooler_channel;"}) {
    SCOPED_TRACE(fmt::format("simple query `{}`", sql));
    PgResultPtr r(PQexec(conn.get(), sql));
    EXPECT_EQ(PQresultStatus(r.get()), PGRES_FATAL_ERROR);
    EXPECT_EQ(sqlstate(r.get()), "0A000") << PQresultErrorMessage(r.get());
    EXPECT_EQ(query_value(conn.get(), "SELECT 1"), "1");
  }
  {
    SCOPED_TRACE("extended protocol (Parse/Bind/Execute)");
    PgResultPtr r(PQexecParams(conn.get(), "LISTEN pooler_channel", 0, nullptr, nullptr, nullptr, nullptr, 0));
    EXPECT_EQ(PQresultStatus(r.get()), PGRES_FATAL_ERROR);
    EXPECT_EQ(sqlstate(r.get()), "0A000") << PQresultErrorMessage(r.get());
    EXPECT_EQ(query_value(conn.get(), "SELECT 1"), "1");
  }
  for (const auto& s : census(kPrepDb)) EXPECT_EQ(s.listening, 0) << "server connection " << s.pid << " listens";
}

}  // namespace
}  // namespace pooler::test
