// PgCluster: drives initdb / pg_ctl / psql through run_command and watches the server with libpq's PQping.
#include "tests/harness/pg_cluster.h"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <pwd.h>
#include <sstream>
#include <stdexcept>
#include <sys/file.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <fmt/format.h>
#include <libpq-fe.h>

#include "tests/harness/net_util.h"
#include "tests/harness/run_command.h"

namespace pooler::test {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto kStartDeadline = 30s;
constexpr int kStartAttempts = 3;

const char* auth_name(HostAuth auth) {
  switch (auth) {
    case HostAuth::trust: return "trust";
    case HostAuth::md5: return "md5";
    case HostAuth::scram_sha_256: return "scram-sha-256";
  }
  return "scram-sha-256";
}

// /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may contain spaces and parentheses, so parse after the
// last ')'.
struct ProcStat {
  char state = '?';
  pid_t ppid = 0;
};

std::optional<ProcStat> proc_stat(pid_t pid) {
  std::string text = read_file(fmt::format("/proc/{}/stat", pid));
  auto close = text.rfind(')');
  if (close == std::string::npos || close + 4 > text.size()) return std::nullopt;
  std::istringstream rest(text.substr(close + 2));
  ProcStat stat;
  rest >> stat.state >> stat.ppid;
  if (!rest) return std::nullopt;
  return stat;
}

// Gone, or a zombie nobody reaped yet: either way it holds no memory, sockets or shared memory any more.
bool process_gone(pid_t pid) {
  auto stat = proc_stat(pid);
  return !stat || stat->state == 'Z' || stat->state == 'X';
}

bool is_postgres_process(pid_t pid) {
  std::string comm = read_file(fmt::format("/proc/{}/comm", pid));
  return comm.starts_with("postgres");
}

std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> children;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = static_cast<pid_t>(std::stol(name));
    auto stat = proc_stat(pid);
    if (stat && stat->ppid == parent) children.push_back(pid);
  }
  return children;
}

template <typename Predicate>
bool wait_for(Predicate done, std::chrono::milliseconds deadline) {
  const auto until = Clock::now() + deadline;
  while (!done()) {
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

void chown_to_postgres(const std::filesystem::path& path) {
  passwd* pw = ::getpwnam("postgres");
  if (pw == nullptr) throw std::runtime_error("running as root but there is no `postgres` OS user");
  if (::chown(path.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
    throw std::runtime_error(fmt::format("chown {}: {}", path.string(), std::strerror(errno)));
  }
}

}  // namespace

std::string quote_literal(const std::string& value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

std::string quote_identifier(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string quote_conninfo_value(const std::string& value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

PgCluster::PgCluster(PgClusterOptions options) : options_(std::move(options)), temp_("pooler-pg-") {
  as_root_ = ::geteuid() == 0;
  const char* env_bin = std::getenv("PG_BIN");
  bin_dir_ = env_bin != nullptr && *env_bin != '\0' ? std::filesystem::path(env_bin) : options_.bin_dir;
  data_dir_ = temp_.path() / "data";
  socket_dir_ = temp_.path() / "sock";
  log_file_ = temp_.path() / "server.log";
  std::filesystem::create_directory(socket_dir_);
  if (as_root_) {
    chown_to_postgres(temp_.path());
    chown_to_postgres(socket_dir_);
  }
  start_watchdog();
  try {
    init_db();
    for (int attempt = 1;; ++attempt) {
      port_ = free_port();
      try {
        start_on_current_port();
        break;
      } catch (const std::runtime_error&) {
        // Someone else may have taken the port between free_port() and the server's bind().
        bool port_taken = log().find("could not bind") != std::string::npos ||
                          log().find("already in use") != std::string::npos;
        if (!port_taken || attempt == kStartAttempts) throw;
      }
    }
    create_roles_and_databases();
  } catch (...) {
    shutdown_for_good();
    throw;
  }
}

PgCluster::~PgCluster() { shutdown_for_good(); }

std::string PgCluster::bin(const char* program) const { return (bin_dir_ / program).string(); }

std::vector<std::string> PgCluster::as_owner(std::vector<std::string> argv) const {
  if (!as_root_) return argv;
  std::vector<std::string> wrapped = {"runuser", "-u", "postgres", "--"};
  wrapped.insert(wrapped.end(), argv.begin(), argv.end());
  return wrapped;
}

std::optional<std::filesystem::path> PgCluster::template_dir() const {
  const char* env = std::getenv("POOLER_TEST_PG_TEMPLATE");
  if (env != nullptr) {
    if (*env == '\0') return std::nullopt;  // set but empty: caching switched off
    return std::filesystem::path(env);
  }
#ifdef POOLER_TEST_PG_TEMPLATE
  return std::filesystem::path(POOLER_TEST_PG_TEMPLATE);
#else
  return std::nullopt;
#endif
}

void PgCluster::run_initdb(const std::filesystem::path& target) const {
  // Host auth is written into pg_hba.conf afterwards, so one initdb result fits every option set.
  std::vector<std::string> argv = as_owner({bin("initdb"), "--no-sync", "-A", "trust", "-U", kPgSuperuser, "-E",
                                            "UTF8", "--locale=C", "-D", target.string()});
  CommandResult result = run_command(argv, 180s);
  if (result.exit_code != 0) throw std::runtime_error("initdb failed: " + describe(argv, result));
}

std::filesystem::path PgCluster::ensure_template(const std::filesystem::path& cache) const {
  // initdb costs seconds on a loaded machine and every test process needs a cluster, so the first process
  // initdb's once into the cache and everyone copies that. The lock serialises ctest -j; the template
  // appears by an atomic rename and is never modified afterwards.
  const std::filesystem::path ready = cache / ("data-" + std::to_string(std::hash<std::string>{}(bin_dir_.string())));
  if (std::filesystem::exists(ready / "PG_VERSION")) return ready;
  std::filesystem::create_directories(cache);
  if (as_root_) chown_to_postgres(cache);
  int lock = ::open((cache / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock < 0) throw std::runtime_error(fmt::format("open {}/lock: {}", cache.string(), std::strerror(errno)));
  ::flock(lock, LOCK_EX);
  try {
    if (!std::filesystem::exists(ready / "PG_VERSION")) {
      std::filesystem::path building = cache / fmt::format("building-{}", ::getpid());
      std::error_code ignored;
      std::filesystem::remove_all(building, ignored);
      run_initdb(building);
      std::filesystem::rename(building, ready);
    }
  } catch (...) {
    ::close(lock);
    throw;
  }
  ::close(lock);
  return ready;
}

void PgCluster::init_db() {
  std::optional<std::filesystem::path> cache = template_dir();
  if (cache) {
    std::filesystem::path source = ensure_template(*cache);
    std::vector<std::string> argv = {"cp", "-a", source.string(), data_dir_.string()};
    CommandResult result = run_command(argv, 120s);
    if (result.exit_code != 0) throw std::runtime_error("copying the template cluster failed: " + describe(argv, result));
  } else {
    run_initdb(data_dir_);
  }

  const char* auth = auth_name(options_.host_auth);
  std::ofstream hba(data_dir_ / "pg_hba.conf", std::ios::trunc);
  // The superuser uses the unix socket without a password; TCP clients, like the pooler, authenticate.
  hba << "local all all trust\n"
      << "local replication all trust\n"
      << "host all all 127.0.0.1/32 " << auth << "\n"
      << "host all all ::1/128 " << auth << "\n"
      << "host replication all 127.0.0.1/32 " << auth << "\n";
  if (!hba) throw std::runtime_error("could not write pg_hba.conf");

  std::ofstream conf(data_dir_ / "postgresql.conf", std::ios::app);
  // Durability buys nothing in a throwaway cluster and costs seconds per test.
  conf << "\n# pooler test harness\n"
       << "listen_addresses = '127.0.0.1'\n"
       << "unix_socket_directories = '" << socket_dir_.string() << "'\n"
       << "fsync = off\n"
       << "synchronous_commit = off\n"
       << "full_page_writes = off\n"
       << "shared_buffers = 16MB\n"
       << "max_connections = 200\n"
       << "password_encryption = '"
       << (options_.host_auth == HostAuth::md5 ? "md5" : "scram-sha-256") << "'\n";
  for (const auto& line : options_.extra_conf) conf << line << "\n";
  if (!conf) throw std::runtime_error("could not append to postgresql.conf");
}

void PgCluster::start_on_current_port() {
  std::vector<std::string> argv =
      as_owner({bin("pg_ctl"), "-D", data_dir_.string(), "-l", log_file_.string(), "-o",
                fmt::format("-p {}", port_), "-w", "-t", std::to_string(kStartDeadline.count()), "start"});
  CommandResult result = run_command(argv, kStartDeadline + 10s);
  if (result.exit_code != 0) {
    throw std::runtime_error(
        fmt::format("PostgreSQL did not start: {}\n--- server log tail ---\n{}", describe(argv, result), log_tail()));
  }
  running_ = true;
  wait_until_accepting();
}

void PgCluster::wait_until_accepting() {
  // pg_ctl -w has seen the postmaster report "ready"; also wait for TCP, which is what clients use.
  const std::string ping = fmt::format("host=127.0.0.1 port={} user={} dbname=postgres connect_timeout=5", port_,
                                       kPgSuperuser);
  const auto until = Clock::now() + kStartDeadline;
  for (;;) {
    if (PQping(ping.c_str()) == PQPING_OK) return;
    if (Clock::now() >= until) {
      throw std::runtime_error(fmt::format("PostgreSQL on port {} did not accept connections within {} s\n"
                                           "--- server log tail ---\n{}",
                                           port_, kStartDeadline.count(), log_tail()));
    }
    std::this_thread::sleep_for(20ms);
  }
}

void PgCluster::create_roles_and_databases() {
  if (options_.roles.empty() && options_.databases.empty()) return;
  // One psql reading a script: each statement runs on its own, which CREATE DATABASE requires.
  std::string script;
  for (const auto& role : options_.roles) {
    script += fmt::format("CREATE ROLE {} LOGIN{} PASSWORD {};\n", quote_identifier(role.name),
                          role.superuser ? " SUPERUSER" : "", quote_literal(role.password));
  }
  for (const auto& db : options_.databases) {
    script += fmt::format("CREATE DATABASE {} OWNER {};\n", quote_identifier(db.name),
                          quote_identifier(db.owner.empty() ? kPgSuperuser : db.owner));
  }
  std::vector<std::string> argv = {"psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", socket_dir_.string(), "-p",
                                   std::to_string(port_), "-U", kPgSuperuser, "-d", "postgres", "-f", "-"};
  CommandOptions command;
  command.input = script;
  CommandResult result = run_command(argv, command);
  if (result.exit_code != 0) throw std::runtime_error("creating roles/databases failed: " + describe(argv, result));
}

std::optional<pid_t> PgCluster::postmaster_pid() const {
  std::ifstream in(data_dir_ / "postmaster.pid");
  long pid = 0;
  if (!(in >> pid) || pid <= 0) return std::nullopt;
  return static_cast<pid_t>(pid);
}

void PgCluster::stop() {
  if (!running_) return;
  std::vector<std::string> argv = as_owner({bin("pg_ctl"), "-D", data_dir_.string(), "-m", "fast", "-w", "-t", "60",
                                            "stop"});
  CommandResult result = run_command(argv, 70s);
  if (result.exit_code != 0) throw std::runtime_error("pg_ctl stop failed: " + describe(argv, result));
  running_ = false;
}

void PgCluster::kill9() {
  auto pid = postmaster_pid();
  if (!pid) throw std::runtime_error("kill9: no postmaster.pid, is the server running?");
  // A stale pid file may name a pid that now belongs to some other program: never signal that one.
  if (!is_postgres_process(*pid)) {
    remove_stale_lock_files();
    running_ = false;
    return;
  }
  // Freeze the postmaster first so it cannot fork a child we would miss while we list its children.
  ::kill(*pid, SIGSTOP);
  wait_for([&] {
    auto stat = proc_stat(*pid);
    return !stat || stat->state == 'T' || stat->state == 'Z';
  }, 5s);
  std::vector<pid_t> children = children_of(*pid);
  ::kill(*pid, SIGKILL);
  // Killing the children too makes every server connection drop at once, instead of whenever each backend
  // notices its parent is gone; that keeps failure tests deterministic.
  for (pid_t child : children) ::kill(child, SIGKILL);
  bool gone = wait_for([&] {
    if (!process_gone(*pid)) return false;
    for (pid_t child : children) {
      if (!process_gone(child)) return false;
    }
    return true;
  }, 10s);
  if (!gone) throw std::runtime_error("kill9: server processes still alive after 10 s");
  remove_stale_lock_files();
  running_ = false;
}

void PgCluster::remove_stale_lock_files() {
  // Line 7 of postmaster.pid is "<shmem key> <shmem id>". A crashed postmaster leaves that SysV segment
  // behind; remove it, then the lock files, so the next start needs no pid-liveness guesswork (an unreaped
  // zombie would look alive to PostgreSQL's check).
  std::ifstream in(data_dir_ / "postmaster.pid");
  std::string line;
  for (int i = 1; i <= 7 && std::getline(in, line); ++i) {
    if (i != 7) continue;
    std::istringstream fields(line);
    long key = 0, id = -1;
    if (fields >> key >> id && id >= 0) ::shmctl(static_cast<int>(id), IPC_RMID, nullptr);
  }
  std::error_code ignored;
  std::filesystem::remove(data_dir_ / "postmaster.pid", ignored);
  std::filesystem::remove(socket_dir_ / fmt::format(".s.PGSQL.{}", port_), ignored);
  std::filesystem::remove(socket_dir_ / fmt::format(".s.PGSQL.{}.lock", port_), ignored);
}

void PgCluster::start() {
  if (running_) return;
  start_on_current_port();
}

void PgCluster::restart() {
  stop();
  start();
}

std::string PgCluster::psql(const std::string& sql, const std::string& db) const {
  std::vector<std::string> argv = {"psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-A", "-t", "-h",
                                   socket_dir_.string(), "-p", std::to_string(port_), "-U", kPgSuperuser, "-d", db,
                                   "-c", sql};
  CommandResult result = run_command(argv, 120s);
  if (result.exit_code != 0) throw std::runtime_error("psql failed: " + describe(argv, result));
  std::string out = std::move(result.out);
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::string PgCluster::conninfo(const std::string& user, const std::string& password, const std::string& db) const {
  return fmt::format("host=127.0.0.1 port={} user={} password={} dbname={}", port_, quote_conninfo_value(user),
                     quote_conninfo_value(password), quote_conninfo_value(db));
}

std::string PgCluster::superuser_conninfo(const std::string& db) const {
  return fmt::format("host={} port={} user={} dbname={}", quote_conninfo_value(socket_dir_.string()), port_,
                     kPgSuperuser, quote_conninfo_value(db));
}

std::string PgCluster::log() const { return read_file(log_file_); }

std::string PgCluster::log_tail(std::size_t lines) const { return tail_lines(log(), lines); }

void PgCluster::start_watchdog() {
  // If the test process dies without running destructors (a crash, ctest's timeout kill), nobody would stop
  // the server or delete the directory. A tiny shell in its own session blocks reading a pipe whose write
  // end only we hold; when we go away for any reason the read returns and it cleans up.
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe for watchdog failed");
  static const char* script =
      "read -r _ignored\n"
      "pidfile=\"$1/postmaster.pid\"\n"
      "if [ -f \"$pidfile\" ]; then\n"
      "  pid=$(head -n 1 \"$pidfile\")\n"
      "  kill -QUIT \"$pid\" 2>/dev/null\n"
      "  i=0; while kill -0 \"$pid\" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done\n"
      "  kill -KILL \"$pid\" 2>/dev/null\n"
      "fi\n"
      "rm -rf \"$2\"\n";
  std::string data = data_dir_.string();
  std::string base = temp_.path().string();
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    throw std::runtime_error("fork for watchdog failed");
  }
  if (pid == 0) {
    ::setsid();
    ::dup2(fds[0], STDIN_FILENO);
    int null_fd = ::open("/dev/null", O_WRONLY);
    ::dup2(null_fd, STDOUT_FILENO);
    ::dup2(null_fd, STDERR_FILENO);
    ::execl("/bin/sh", "sh", "-c", script, "pooler-pg-watchdog", data.c_str(), base.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[0]);
  watchdog_fd_ = fds[1];
  watchdog_pid_ = pid;
}

void PgCluster::stop_watchdog() {
  if (watchdog_fd_ >= 0) ::close(watchdog_fd_);
  watchdog_fd_ = -1;
  if (watchdog_pid_ > 0) {
    while (::waitpid(watchdog_pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  watchdog_pid_ = -1;
}

void PgCluster::shutdown_for_good() noexcept {
  try {
    if (postmaster_pid()) {
      // Immediate: the data is thrown away, so skip the shutdown checkpoint.
      std::vector<std::string> argv = as_owner({bin("pg_ctl"), "-D", data_dir_.string(), "-m", "immediate", "-w",
                                                "-t", "20", "stop"});
      CommandResult result = run_command(argv, 30s);
      if (result.exit_code != 0 && postmaster_pid()) kill9();
    }
  } catch (...) {
    // Best effort; the watchdog below still gets a try.
  }
  running_ = false;
  temp_.remove();
  stop_watchdog();
}

}  // namespace pooler::test
