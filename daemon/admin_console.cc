// The admin console's parser and result sets. Columns follow PgBouncer 1.18's SHOW output where our concepts
// match, in its order; columns of ours (cl_idle, max_overflow, …) come after PgBouncer's.
#include "daemon/admin_console.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <initializer_list>
#include <span>

#include "protocol/writer.h"

namespace pooler::daemon {

namespace {

namespace proto = pooler::protocol;

// --- result sets -------------------------------------------------------------------------------------------

enum class ColumnType { kInt8, kText };

struct Column {
  std::string_view name;
  ColumnType type;
};

constexpr std::int32_t kInt8Oid = 20;
constexpr std::int32_t kTextOid = 25;

using Cell = std::optional<std::string>;  // nullopt = SQL NULL

void write_row_description(std::string& out, std::span<const Column> cols) {
  const std::size_t at = proto::begin_message(out, 'T');
  proto::append_int16(out, static_cast<std::int16_t>(cols.size()));
  for (const Column& c : cols) {
    proto::append_cstring(out, c.name);
    proto::append_int32(out, 0);  // table OID
    proto::append_int16(out, 0);  // column attribute number
    proto::append_int32(out, c.type == ColumnType::kInt8 ? kInt8Oid : kTextOid);
    proto::append_int16(out, c.type == ColumnType::kInt8 ? 8 : -1);  // typlen
    proto::append_int32(out, -1);                                    // typmod
    proto::append_int16(out, 0);                                     // text format
  }
  proto::finish_message(out, at);
}

void write_data_row(std::string& out, std::span<const Cell> cells) {
  const std::size_t at = proto::begin_message(out, 'D');
  proto::append_int16(out, static_cast<std::int16_t>(cells.size()));
  for (const Cell& c : cells) {
    if (!c) {
      proto::append_int32(out, -1);
      continue;
    }
    proto::append_int32(out, static_cast<std::int32_t>(c->size()));
    out.append(*c);
  }
  proto::finish_message(out, at);
}

void write_command_complete(std::string& out, std::string_view tag) {
  const std::size_t at = proto::begin_message(out, 'C');
  proto::append_cstring(out, tag);
  proto::finish_message(out, at);
}

void write_empty_query_response(std::string& out) {
  const std::size_t at = proto::begin_message(out, 'I');
  proto::finish_message(out, at);
}

Cell num(std::int64_t v) { return fmt::format("{}", v); }
Cell num(std::uint64_t v) { return fmt::format("{}", v); }
Cell num(int v) { return fmt::format("{}", v); }
Cell num(bool v) { return v ? "1" : "0"; }
Cell text(std::string_view s) { return std::string(s); }
// PgBouncer shows internal object addresses as ptr/link; ours are connection ids, in hex like theirs.
Cell ptr(std::optional<std::uint64_t> id) {
  if (!id) return std::nullopt;
  return fmt::format("{:x}", *id);
}

// A result set: its columns, then rows appended one by one, then "SHOW".
class Table {
 public:
  Table(std::string& out, std::initializer_list<Column> cols) : out_(out) {
    write_row_description(out_, std::span<const Column>(cols.begin(), cols.size()));
  }
  void row(std::initializer_list<Cell> cells) {
    write_data_row(out_, std::span<const Cell>(cells.begin(), cells.size()));
  }
  void done() { write_command_complete(out_, "SHOW"); }

 private:
  std::string& out_;
};

constexpr Column i8(std::string_view n) { return {n, ColumnType::kInt8}; }
constexpr Column tx(std::string_view n) { return {n, ColumnType::kText}; }

void show_pools(AdminBackend& b, std::string& out) {
  Table t(out, {tx("database"), tx("user"), i8("cl_active"), i8("cl_waiting"), i8("sv_active"), i8("sv_idle"),
                i8("sv_used"), i8("sv_tested"), i8("sv_login"), i8("maxwait"), i8("maxwait_us"), tx("pool_mode"),
                i8("cl_idle"), i8("pool_size"), i8("max_overflow"), i8("overflow_in_use"), i8("paused")});
  for (const AdminPool& p : b.pools()) {
    // Whole microseconds, split as PgBouncer does: maxwait seconds plus maxwait_us below a second.
    const double w = std::isfinite(p.maxwait_seconds) ? std::max(0.0, p.maxwait_seconds) : 0.0;
    const auto us = static_cast<std::int64_t>(std::floor(w * 1e6));
    t.row({text(p.database), text(p.user), num(p.cl_active), num(p.cl_waiting), num(p.sv_active), num(p.sv_idle),
           num(0), num(p.sv_tested), num(p.sv_login), num(us / 1000000), num(us % 1000000), text(p.pool_mode),
           num(p.cl_idle), num(p.pool_size), num(p.max_overflow), num(p.overflow_in_use), num(p.paused)});
  }
  t.done();
}

void show_clients(AdminBackend& b, std::string& out) {
  Table t(out, {tx("type"), tx("user"), tx("database"), tx("state"), tx("addr"), i8("port"), tx("connect_time"),
                tx("ptr"), tx("link"), tx("application_name"), i8("id")});
  for (const AdminClient& c : b.clients()) {
    t.row({text("C"), text(c.user), text(c.database), text(c.state), text(c.addr), num(c.port),
           text(c.connect_time), ptr(c.id), ptr(c.server_id), text(c.application_name), num(c.id)});
  }
  t.done();
}

void show_servers(AdminBackend& b, std::string& out) {
  Table t(out, {tx("type"), tx("user"), tx("database"), tx("state"), tx("addr"), i8("port"), tx("connect_time"),
                tx("ptr"), tx("link"), i8("remote_pid"), i8("id")});
  for (const AdminServer& s : b.servers()) {
    t.row({text("S"), text(s.user), text(s.database), text(s.state), text(s.addr), num(s.port),
           text(s.connect_time), ptr(s.id), ptr(s.client_id), num(s.backend_pid), num(s.id)});
  }
  t.done();
}

void show_stats(AdminBackend& b, std::string& out) {
  Table t(out, {tx("database"), i8("total_xact_count"), i8("total_query_count"), i8("total_received"),
                i8("total_sent"), i8("total_xact_time"), i8("total_wait_time")});
  for (const AdminStats& s : b.stats()) {
    t.row({text(s.database), num(s.total_xact_count), num(s.total_query_count), num(s.total_received),
           num(s.total_sent), num(s.total_xact_time_us), num(s.total_wait_time_us)});
  }
  t.done();
}

void show_databases(AdminBackend& b, std::string& out) {
  Table t(out, {tx("name"), tx("host"), i8("port"), tx("database"), tx("force_user"), i8("pool_size"),
                i8("min_pool_size"), tx("pool_mode"), i8("current_connections"), i8("paused"), i8("max_overflow"),
                i8("disabled")});
  for (const AdminDatabase& d : b.databases()) {
    // PgBouncer shows NULL for "no forced user"; an empty host is a unix socket there, NULL too.
    t.row({text(d.name), d.host.empty() ? Cell{} : text(d.host), num(d.port), text(d.database),
           d.force_user.empty() ? Cell{} : text(d.force_user), num(d.pool_size), num(d.min_pool_size),
           text(d.pool_mode), num(d.current_connections), num(d.paused), num(d.max_overflow), num(d.disabled)});
  }
  t.done();
}

void show_config(AdminBackend& b, std::string& out) {
  Table t(out, {tx("key"), tx("value")});
  for (const auto& [k, v] : b.config_values()) t.row({text(k), text(v)});
  t.done();
}

void show_version(std::string& out) {
  Table t(out, {tx("version")});
  t.row({text("pooler " POOLER_VERSION)});
  t.done();
}

constexpr std::string_view kHelp =
    "\tSHOW HELP|POOLS|CLIENTS|SERVERS|STATS|DATABASES|CONFIG|VERSION\n"
    "\tPAUSE [<db>]\n"
    "\tRESUME [<db>]\n"
    "\tKILL <db>\n"
    "\tRECONNECT [<db>]\n"
    "\tDISABLE <db>\n"
    "\tENABLE <db>\n"
    "\tRELOAD\n"
    "\tSHUTDOWN";

void show_help(std::string& out) {
  proto::write_notice_response(out, {.severity = proto::Severity::kNotice,
                                     .sqlstate = "00000",
                                     .message = "Console usage",
                                     .detail = std::string(kHelp),
                                     .hint = ""});
  write_command_complete(out, "SHOW");
}

// --- parsing -----------------------------------------------------------------------------------------------

struct Failure {
  std::string sqlstate;
  std::string message;
  std::string hint;
};

struct Token {
  std::string text;
  bool quoted = false;
};

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Splits at ';' outside quotes, dropping `--` comments. Statements keep their surrounding whitespace.
std::vector<std::string> split_statements(std::string_view sql) {
  std::vector<std::string> out(1);
  char quote = 0;
  for (std::size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (quote != 0) {
      out.back() += c;
      if (c == quote) quote = 0;  // a doubled quote re-opens at once on the next character
    } else if (c == '"' || c == '\'') {
      quote = c;
      out.back() += c;
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      while (i < sql.size() && sql[i] != '\n') ++i;
      out.back() += ' ';
    } else if (c == ';') {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  return out;
}

std::expected<std::vector<Token>, Failure> tokenize(std::string_view stmt) {
  std::vector<Token> out;
  std::size_t i = 0;
  while (i < stmt.size()) {
    if (is_space(stmt[i])) {
      ++i;
      continue;
    }
    Token t;
    if (stmt[i] == '"') {
      t.quoted = true;
      ++i;
      for (;;) {
        if (i >= stmt.size()) return std::unexpected(Failure{"42601", "unterminated quoted identifier", ""});
        if (stmt[i] == '"') {
          if (i + 1 < stmt.size() && stmt[i + 1] == '"') {
            t.text += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        t.text += stmt[i++];
      }
      if (t.text.empty()) return std::unexpected(Failure{"42601", "zero-length quoted identifier", ""});
      if (i < stmt.size() && !is_space(stmt[i])) {
        return std::unexpected(Failure{"42601", fmt::format("syntax error at or near \"{}\"", stmt.substr(i)), ""});
      }
    } else {
      while (i < stmt.size() && !is_space(stmt[i])) {
        if (stmt[i] == '"' || stmt[i] == '\'') {
          return std::unexpected(
              Failure{"42601", fmt::format("syntax error at or near \"{}\"", stmt.substr(i)), ""});
        }
        t.text += stmt[i++];
      }
    }
    out.push_back(std::move(t));
  }
  return out;
}

bool is_keyword(const Token& t, std::string_view kw) { return !t.quoted && iequals(t.text, kw); }

Failure usage(std::string_view command, std::string_view form) {
  return {"42601", fmt::format("syntax error in {}", command), fmt::format("usage: {}", form)};
}

// PAUSE/RESUME/KILL name a configured database; anything else is 42704 before the backend is asked.
std::expected<void, Failure> require_database(AdminBackend& b, const std::string& name) {
  for (const AdminDatabase& d : b.databases()) {
    if (d.name == name) return {};
  }
  return std::unexpected(Failure{"42704", fmt::format("no such database: {}", name), ""});
}

std::expected<void, Failure> from_backend(std::expected<void, std::string> r) {
  if (r) return {};
  return std::unexpected(Failure{"55000", std::move(r.error()), ""});
}

std::expected<void, Failure> run_show(const std::vector<Token>& args, AdminBackend& b, std::string& out) {
  if (args.size() != 2) return std::unexpected(usage("SHOW", "SHOW HELP|POOLS|CLIENTS|SERVERS|STATS|DATABASES|CONFIG|VERSION"));
  const Token& what = args[1];
  using Fn = void (*)(AdminBackend&, std::string&);
  static constexpr std::pair<std::string_view, Fn> kItems[] = {
      {"pools", show_pools},
      {"clients", show_clients},
      {"servers", show_servers},
      {"stats", show_stats},
      {"databases", show_databases},
      {"config", show_config},
      {"version", [](AdminBackend&, std::string& o) { show_version(o); }},
      {"help", [](AdminBackend&, std::string& o) { show_help(o); }},
  };
  for (const auto& [name, fn] : kItems) {
    if (is_keyword(what, name)) {
      // Built aside so that a backend that throws leaves no half result set in `out`.
      std::string result;
      fn(b, result);
      out += result;
      return {};
    }
  }
  // PgBouncer has these; we have no equivalent.
  static constexpr std::string_view kPgBouncerOnly[] = {
      "lists", "users",      "peers",          "peer_pools",     "fds",   "sockets", "active_sockets",
      "mem",   "dns_hosts",  "dns_zones",      "state",          "totals", "stats_totals", "stats_averages",
  };
  for (std::string_view name : kPgBouncerOnly) {
    if (is_keyword(what, name)) {
      return std::unexpected(Failure{"0A000", fmt::format("SHOW {} is not supported by pooler", what.text),
                                     "SHOW HELP lists the commands"});
    }
  }
  return std::unexpected(
      Failure{"42704", fmt::format("unknown SHOW item: {}", what.text), "SHOW HELP lists the commands"});
}

std::expected<void, Failure> run(const std::vector<Token>& args, AdminBackend& b, std::string& out) {
  const Token& cmd = args[0];
  if (is_keyword(cmd, "show")) return run_show(args, b, out);

  if (is_keyword(cmd, "pause") || is_keyword(cmd, "resume") || is_keyword(cmd, "reconnect")) {
    const bool pause = is_keyword(cmd, "pause");
    const bool reconnect = is_keyword(cmd, "reconnect");
    const char* tag = pause ? "PAUSE" : reconnect ? "RECONNECT" : "RESUME";
    if (args.size() > 2) return std::unexpected(usage(tag, fmt::format("{} [<db>]", tag)));
    std::optional<std::string> db;
    if (args.size() == 2) {
      db = args[1].text;
      if (auto r = require_database(b, *db); !r) return r;
    }
    if (auto r = from_backend(pause ? b.pause(db) : reconnect ? b.reconnect(db) : b.resume(db)); !r) return r;
    write_command_complete(out, tag);
    return {};
  }
  if (is_keyword(cmd, "disable") || is_keyword(cmd, "enable")) {
    const bool disable = is_keyword(cmd, "disable");
    const char* tag = disable ? "DISABLE" : "ENABLE";
    if (args.size() != 2) return std::unexpected(usage(tag, fmt::format("{} <db>", tag)));
    if (auto r = require_database(b, args[1].text); !r) return r;
    if (auto r = from_backend(disable ? b.disable(args[1].text) : b.enable(args[1].text)); !r) return r;
    write_command_complete(out, tag);
    return {};
  }
  if (is_keyword(cmd, "kill")) {
    if (args.size() != 2) return std::unexpected(usage("KILL", "KILL <db>"));
    if (auto r = require_database(b, args[1].text); !r) return r;
    if (auto r = from_backend(b.kill(args[1].text)); !r) return r;
    write_command_complete(out, "KILL");
    return {};
  }
  if (is_keyword(cmd, "reload") || is_keyword(cmd, "shutdown")) {
    const bool reload = is_keyword(cmd, "reload");
    const char* tag = reload ? "RELOAD" : "SHUTDOWN";
    if (args.size() != 1) return std::unexpected(usage(tag, tag));
    if (auto r = from_backend(reload ? b.reload() : b.shutdown()); !r) return r;
    write_command_complete(out, tag);
    return {};
  }
  // PgBouncer console commands with no pooler equivalent.
  static constexpr std::string_view kPgBouncerOnly[] = {"suspend", "wait_close", "set", "kill_client"};
  for (std::string_view name : kPgBouncerOnly) {
    if (is_keyword(cmd, name)) {
      return std::unexpected(Failure{"0A000", fmt::format("{} is not supported by pooler", cmd.text),
                                     "SHOW HELP lists the commands"});
    }
  }
  return std::unexpected(Failure{"42601", fmt::format("syntax error at or near \"{}\"", cmd.text),
                                 "this is the pooler admin console; SHOW HELP lists the commands"});
}

}  // namespace

void execute_admin(std::string_view sql, AdminBackend& backend, std::string& out) {
  bool any = false;
  for (const std::string& stmt : split_statements(sql)) {
    auto tokens = tokenize(stmt);
    std::expected<void, Failure> r;
    if (!tokens) {
      r = std::unexpected(std::move(tokens.error()));
    } else if (tokens->empty()) {
      continue;
    } else {
      any = true;
      r = run(*tokens, backend, out);
    }
    if (!r) {
      proto::write_error_response(out, {.severity = proto::Severity::kError,
                                        .sqlstate = r.error().sqlstate,
                                        .message = r.error().message,
                                        .detail = "",
                                        .hint = r.error().hint});
      return;  // as PostgreSQL: the rest of a multi-statement Query is not run after an error
    }
  }
  if (!any) write_empty_query_response(out);
}

}  // namespace pooler::daemon
