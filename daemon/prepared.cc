// Prepared-statement bookkeeping for transaction mode: see prepared.h.
#include "daemon/prepared.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <utility>

namespace pooler::daemon {

// ---- StatementRegistry ----

StatementRef StatementRegistry::intern(std::string_view parse_tail) {
  auto it = by_tail_.find(parse_tail);
  if (it != by_tail_.end()) {
    if (StatementRef live = it->second.lock()) return live;
  }
  // A new name even for a tail seen before: nobody holds the old statement, so no server has it either.
  std::string key(parse_tail);
  auto s = std::make_shared<const Statement>(Statement{fmt::format("pooler_{}", ++next_id_), key});
  by_tail_.insert_or_assign(std::move(key), s);
  // Entries nobody holds are swept once the map could have doubled with them: amortised O(1) per insert.
  if (++inserts_since_sweep_ > by_tail_.size() / 2 + 64) sweep();
  return s;
}

std::size_t StatementRegistry::live() const {
  return static_cast<std::size_t>(
      std::count_if(by_tail_.begin(), by_tail_.end(), [](const auto& kv) { return !kv.second.expired(); }));
}

void StatementRegistry::sweep() {
  std::erase_if(by_tail_, [](const auto& kv) { return kv.second.expired(); });
  inserts_since_sweep_ = 0;
}

// ---- ServerStatements ----

ServerStatements::State ServerStatements::state(const Statement* s, std::uint64_t group) const {
  auto it = index_.find(s);
  if (it == index_.end()) return State::kAbsent;
  const Slot& slot = *it->second;
  if (slot.uncertain || (slot.parse != 0 && slot.group != group)) return State::kStale;
  return State::kReady;
}

void ServerStatements::touch(const Statement* s) {
  auto it = index_.find(s);
  if (it != index_.end()) lru_.splice(lru_.begin(), lru_, it->second);
}

StatementRef ServerStatements::add(StatementRef s, std::uint64_t parse, std::uint64_t group) {
  const Statement* key = s.get();
  lru_.push_front(Slot{std::move(s), parse, group, false});
  index_[key] = lru_.begin();
  if (index_.size() <= std::max<std::size_t>(capacity_, 1)) return nullptr;
  StatementRef victim = std::move(lru_.back().stmt);
  lru_.pop_back();
  index_.erase(victim.get());
  return victim;
}

void ServerStatements::reparse(const Statement* s, std::uint64_t parse, std::uint64_t group) {
  auto it = index_.find(s);
  if (it == index_.end()) return;
  it->second->parse = parse;
  it->second->group = group;
  it->second->uncertain = false;
  lru_.splice(lru_.begin(), lru_, it->second);
}

void ServerStatements::confirm(const Statement* s, std::uint64_t parse) {
  auto it = index_.find(s);
  if (it != index_.end() && it->second->parse == parse) it->second->parse = 0;
}

void ServerStatements::parse_undone(const Statement* s, std::uint64_t parse) {
  auto it = index_.find(s);
  if (it == index_.end() || it->second->parse != parse) return;
  it->second->parse = 0;
  it->second->uncertain = true;
}

void ServerStatements::restore(StatementRef s) {
  if (s == nullptr || contains(s.get())) return;
  const Statement* key = s.get();
  lru_.push_back(Slot{std::move(s), 0, 0, true});
  index_[key] = std::prev(lru_.end());
}

std::vector<StatementRef> ServerStatements::take_all() {
  std::vector<StatementRef> all;
  all.reserve(lru_.size());
  for (Slot& slot : lru_) all.push_back(std::move(slot.stmt));
  lru_.clear();
  index_.clear();
  return all;
}

// ---- OwedAnswers ----

void OwedAnswers::push(Entry e, ServerStatements& cache) {
  if (skipping_) {
    if (e.kind != Kind::kSync) {
      // The server will skip this message; whatever it would have changed did not happen.
      undo(e, cache);
      return;
    }
    skipping_ = false;
  }
  if (e.kind == Kind::kSync) ++syncs_;
  owed_.push_back(std::move(e));
}

void OwedAnswers::push_made_up(std::string bytes, bool ready, ServerStatements& cache) {
  Entry e = Entry::of(Kind::kMadeUp);
  e.bytes = std::move(bytes);
  e.ready = ready;
  push(std::move(e), cache);
}

bool OwedAnswers::hides(char type) const {
  if (owed_.empty()) return false;
  Kind k = owed_.front().kind;
  return (k == Kind::kHiddenParse && type == '1') || (k == Kind::kHiddenClose && type == '3');
}

bool OwedAnswers::on_message(char type, ServerStatements& cache) {
  if (owed_.empty()) return false;
  Entry& head = owed_.front();
  bool done = false;
  switch (type) {
    case 'E':
      if (head.kind == Kind::kQuery) {
        head.failed = true;
        return false;
      }
      skip_to_sync(cache);
      return made_up_due();
    case '1':
      done = head.kind == Kind::kParse || head.kind == Kind::kHiddenParse;
      if (done && head.stmt != nullptr) cache.confirm(head.stmt.get(), head.parse);
      break;
    case '2':
      done = head.kind == Kind::kBind;
      break;
    case '3':
      done = head.kind == Kind::kClose || head.kind == Kind::kHiddenClose;
      break;
    case 'T':
    case 'n':
      done = head.kind == Kind::kDescribe;
      break;
    case 'C':
    case 'I':
    case 's':
      done = head.kind == Kind::kExecute;
      break;
    case 'Z':
      done = head.kind == Kind::kSync || head.kind == Kind::kQuery;
      if (done && head.failed) undo(head, cache);
      break;
    default:
      return false;
  }
  if (!done) return false;
  owed_.pop_front();
  return made_up_due();
}

bool OwedAnswers::take_made_up(std::string& out, char tx_status) {
  bool ready = false;
  while (made_up_due()) {
    Entry& e = owed_.front();
    out += e.bytes;
    if (e.ready) {
      // ReadyForQuery: 'Z', length 5, status.
      out += 'Z';
      out.append({'\0', '\0', '\0', '\5'});
      out += tx_status;
      ready = true;
    }
    owed_.pop_front();
  }
  return ready;
}

void OwedAnswers::reset() {
  owed_.clear();
  skipping_ = false;
  failed_names_.clear();
}

void OwedAnswers::undo(Entry& e, ServerStatements& cache) {
  switch (e.kind) {
    case Kind::kParse:
    case Kind::kHiddenParse:
      if (e.stmt != nullptr) cache.parse_undone(e.stmt.get(), e.parse);
      if (!e.client_name.empty()) failed_names_.emplace_back(std::move(e.client_name), e.stmt);
      break;
    case Kind::kMadeUp:
      // A ParseComplete made up for a client's Parse that the server would have skipped: no such name.
      if (!e.client_name.empty()) failed_names_.emplace_back(std::move(e.client_name), e.stmt);
      break;
    case Kind::kHiddenClose:
      cache.restore(e.stmt);
      break;
    case Kind::kQuery:
      for (auto& s : e.dropped) cache.restore(std::move(s));
      e.dropped.clear();
      break;
    default:
      break;
  }
}

void OwedAnswers::skip_to_sync(ServerStatements& cache) {
  while (!owed_.empty() && owed_.front().kind != Kind::kSync) {
    undo(owed_.front(), cache);
    owed_.pop_front();
  }
  if (owed_.empty()) skipping_ = true;
}

// ---- classify_query ----

namespace {

class SqlCursor {
 public:
  explicit SqlCursor(std::string_view sql) : sql_(sql) {
    if (auto nul = sql_.find('\0'); nul != std::string_view::npos) sql_ = sql_.substr(0, nul);
  }

  // Skips whitespace, -- comments and (nested) /* */ comments.
  void skip_space() {
    while (pos_ < sql_.size()) {
      char c = sql_[pos_];
      if (std::isspace(static_cast<unsigned char>(c)) != 0) {
        ++pos_;
      } else if (sql_.substr(pos_).starts_with("--")) {
        auto nl = sql_.find('\n', pos_);
        pos_ = nl == std::string_view::npos ? sql_.size() : nl + 1;
      } else if (sql_.substr(pos_).starts_with("/*")) {
        int depth = 0;
        while (pos_ < sql_.size()) {
          if (sql_.substr(pos_).starts_with("/*")) {
            ++depth;
            pos_ += 2;
          } else if (sql_.substr(pos_).starts_with("*/")) {
            pos_ += 2;
            if (--depth == 0) break;
          } else {
            ++pos_;
          }
        }
      } else {
        return;
      }
    }
  }

  // The next unquoted word, lower-cased (SQL folds unquoted identifiers and keywords); "" if none.
  std::string word() {
    skip_space();
    std::string w;
    while (pos_ < sql_.size()) {
      char c = sql_[pos_];
      bool ok = std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_' ||
                (!w.empty() && (std::isdigit(static_cast<unsigned char>(c)) != 0 || c == '$'));
      if (!ok) break;
      w += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      ++pos_;
    }
    return w;
  }

  // A "quoted identifier" (with "" for a quote), exactly as written; nullopt if the next token isn't one.
  bool quoted(std::string& out) {
    skip_space();
    if (pos_ >= sql_.size() || sql_[pos_] != '"') return false;
    std::size_t p = pos_ + 1;
    std::string s;
    while (p < sql_.size()) {
      if (sql_[p] == '"') {
        if (p + 1 < sql_.size() && sql_[p + 1] == '"') {
          s += '"';
          p += 2;
          continue;
        }
        pos_ = p + 1;
        out = std::move(s);
        return true;
      }
      s += sql_[p++];
    }
    return false;
  }

  // True when only an optional semicolon, whitespace and comments remain.
  bool at_end() {
    skip_space();
    if (pos_ < sql_.size() && sql_[pos_] == ';') {
      ++pos_;
      skip_space();
    }
    return pos_ >= sql_.size();
  }

 private:
  std::string_view sql_;
  std::size_t pos_ = 0;
};

}  // namespace

QueryCommand classify_query(std::string_view sql) {
  SqlCursor cur(sql);
  std::string first = cur.word();
  if (first == "listen") return {QueryCommand::Kind::kListen, {}};
  if (first == "set") {
    std::string w = cur.word();
    if (w == "session") w = cur.word();
    if (w == "search_path") return {QueryCommand::Kind::kSetSearchPath, {}};
    return {};
  }
  if (first == "reset") {
    std::string w = cur.word();
    if (w == "search_path" || w == "all") return {QueryCommand::Kind::kSetSearchPath, {}};
    return {};
  }
  if (first == "discard") {
    if (cur.word() == "all" && cur.at_end()) return {QueryCommand::Kind::kDiscardAll, {}};
    return {};
  }
  if (first != "deallocate") return {};
  std::string name;
  if (cur.quoted(name)) {
    if (name.empty()) return {};  // "" is no identifier: the server refuses it
  } else {
    name = cur.word();
    if (name == "prepare") {
      // DEALLOCATE PREPARE name, or a statement called "prepare".
      SqlCursor probe = cur;
      if (!probe.at_end()) {
        if (!cur.quoted(name)) name = cur.word();
      }
    }
    if (name.empty()) return {};
    if (name == "all") return cur.at_end() ? QueryCommand{QueryCommand::Kind::kDeallocateAll, {}} : QueryCommand{};
  }
  if (!cur.at_end()) return {};
  return {QueryCommand::Kind::kDeallocate, std::move(name)};
}

}  // namespace pooler::daemon
