// Transparent protocol-level prepared statements for transaction mode, as pure bookkeeping (no I/O):
//
//   StatementRegistry  the pool's distinct statements (query text + parameter types), each with the name the
//                      pooler prepares it under on servers, so identical statements of different clients share
//                      one server-side statement;
//   ServerStatements   what one server connection has prepared: an LRU bounded by max_prepared_statements;
//   OwedAnswers        the answers a server connection owes its client, in order. The pooler adds requests the
//                      client never sent (a Parse before a Bind, a Close to evict) whose answers it must hide,
//                      and answers requests itself (a Parse of a statement the server already has), whose
//                      made-up answers must reach the client exactly where the server's would have.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace pooler::daemon {

// Hash for maps keyed by std::string that are looked up with string_views from the read buffer, without
// building a std::string per lookup (heterogeneous lookup, with std::equal_to<>).
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
template <class V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

// One distinct statement as the pool prepares it on its servers.
struct Statement {
  std::string server_name;  // "pooler_<n>", unique within the pool
  std::string parse_tail;   // the Parse body after the statement name: query NUL, int16 count, int32 type OIDs
};
using StatementRef = std::shared_ptr<const Statement>;

class StatementRegistry {
 public:
  // The pool's statement for this Parse tail; the same object for identical tails while anyone holds it.
  [[nodiscard]] StatementRef intern(std::string_view parse_tail);
  // Distinct statements somebody (a client or a server connection) still holds.
  [[nodiscard]] std::size_t live() const;

 private:
  void sweep();

  StringMap<std::weak_ptr<const Statement>> by_tail_;
  std::uint64_t next_id_ = 0;
  std::size_t inserts_since_sweep_ = 0;
};

// The statements one server connection has prepared, or has been sent a Parse for, least recently used last.
// A statement's Parse is pending until its ParseComplete; one whose Parse was skipped or failed, or whose
// Close was skipped, is uncertain (it may or may not exist on the server).
class ServerStatements {
 public:
  // kReady: usable by the message being sent (prepared, or its Parse went out earlier in the same Sync
  // group, so if that Parse fails the server skips this message too). kStale: to be closed and prepared
  // again before use (uncertain, or its Parse is still unanswered from an earlier Sync group, where a
  // failure would not stop this message). kAbsent: not there.
  enum class State { kAbsent, kReady, kStale };

  explicit ServerStatements(std::size_t capacity = 0) : capacity_(capacity) {}

  void set_capacity(std::size_t n) { capacity_ = n; }
  [[nodiscard]] std::size_t capacity() const { return capacity_; }
  [[nodiscard]] std::size_t size() const { return index_.size(); }
  [[nodiscard]] bool contains(const Statement* s) const { return index_.contains(s); }
  // As seen by a message in Sync group `group` (OwedAnswers::group()).
  [[nodiscard]] State state(const Statement* s, std::uint64_t group) const;
  // A number for the next Parse sent, to match its answer (and its undoing) to it.
  [[nodiscard]] std::uint64_t next_parse() { return ++parses_; }

  // Marks `s` (present) as the most recently used.
  void touch(const Statement* s);
  // Adds `s` (absent), Parse `parse` pending in `group`, as the most recently used. When that leaves more
  // than capacity (at least 1) entries, removes and returns the least recently used one, which the caller
  // must Close on the server first.
  [[nodiscard]] StatementRef add(StatementRef s, std::uint64_t parse = 0, std::uint64_t group = 0);
  // A stale `s` prepared again: Parse `parse` pending in `group`; most recently used.
  void reparse(const Statement* s, std::uint64_t parse, std::uint64_t group);
  // ParseComplete for Parse `parse` of `s`: prepared (unless a later Parse of it is pending).
  void confirm(const Statement* s, std::uint64_t parse);
  // Parse `parse` of `s` failed or was skipped: uncertain, unless a later Parse of it went out since.
  void parse_undone(const Statement* s, std::uint64_t parse);
  // Puts back a statement whose Close the server skipped (uncertain, least recently used).
  void restore(StatementRef s);
  // Removes everything, returning what was there (for restore() if the server skips the DISCARD).
  [[nodiscard]] std::vector<StatementRef> take_all();

 private:
  struct Slot {
    StatementRef stmt;
    std::uint64_t parse = 0;  // pending Parse; 0 when none
    std::uint64_t group = 0;  // the Sync group it went out in
    bool uncertain = false;
  };
  std::size_t capacity_;
  std::uint64_t parses_ = 0;
  std::list<Slot> lru_;  // front = most recently used
  std::unordered_map<const Statement*, std::list<Slot>::iterator> index_;
};

// What the server connection owes its client, one entry per request message sent (Flush and COPY data get
// no answer and no entry), plus the answers the pooler makes up. Errors follow the server's rule: after an
// ErrorResponse to an extended-protocol message, everything up to the next Sync is skipped.
class OwedAnswers {
 public:
  enum class Kind : std::uint8_t {
    kParse,        // ParseComplete, forwarded; `stmt` (if set) was added to the server's statements for it
    kHiddenParse,  // ParseComplete of a Parse the pooler added before a Bind/Describe: hidden from the client
    kHiddenClose,  // CloseComplete of a Close the pooler added to evict `stmt`: hidden
    kBind,         // BindComplete
    kDescribe,     // RowDescription or NoData (after ParameterDescription for a statement)
    kExecute,      // CommandComplete, EmptyQueryResponse or PortalSuspended
    kClose,        // CloseComplete, forwarded
    kSync,         // ReadyForQuery
    kQuery,        // Query or FunctionCall: ReadyForQuery; an error inside it skips nothing
    kMadeUp,       // `bytes` go to the client when this reaches the head (then ReadyForQuery if `ready`)
  };
  struct Entry {
    static Entry of(Kind k, StatementRef s = nullptr, std::uint64_t parse = 0) {
      Entry e;
      e.kind = k;
      e.stmt = std::move(s);
      e.parse = parse;
      return e;
    }
    Kind kind = Kind::kSync;
    StatementRef stmt;
    std::uint64_t parse = 0;            // kParse/kHiddenParse: ServerStatements::next_parse() of this Parse
    std::string client_name;            // kParse/kMadeUp ParseComplete: the client's name it defines
    std::string bytes;                  // kMadeUp
    bool ready = false;                 // kMadeUp: append ReadyForQuery with the current status
    std::vector<StatementRef> dropped;  // kQuery (DISCARD ALL): statements to restore if it fails
    bool failed = false;                // kQuery: an ErrorResponse arrived inside it
  };

  [[nodiscard]] bool empty() const { return owed_.empty() && !skipping_; }
  [[nodiscard]] std::size_t size() const { return owed_.size(); }

  // Records a request just sent (or an answer to make up). While the server is skipping to the next Sync
  // after an error, anything but a Sync is dropped at once, its effect on `cache` undone.
  void push(Entry e, ServerStatements& cache);
  void push(Kind k, ServerStatements& cache, StatementRef stmt = nullptr, std::uint64_t parse = 0) {
    push(Entry::of(k, std::move(stmt), parse), cache);
  }
  // Sync groups queued so far: a statement whose Parse went out in an earlier group cannot be relied on.
  [[nodiscard]] std::uint64_t group() const { return syncs_; }
  // Client statement names whose Parse failed or was skipped (so the name is free again), since last asked.
  [[nodiscard]] std::vector<std::pair<std::string, StatementRef>> take_failed_names() {
    return std::exchange(failed_names_, {});
  }
  void push_made_up(std::string bytes, bool ready, ServerStatements& cache);

  // True when the next server message of this type answers a request the client never sent.
  [[nodiscard]] bool hides(char type) const;
  // Accounts one complete server message. Returns true when made-up answers are now due (at the head).
  bool on_message(char type, ServerStatements& cache);
  [[nodiscard]] bool made_up_due() const { return !owed_.empty() && owed_.front().kind == Kind::kMadeUp; }
  // Pops the made-up answers at the head into `out` (ReadyForQuery with `tx_status` where owed); returns
  // true when a ReadyForQuery was written.
  bool take_made_up(std::string& out, char tx_status);

  // Forgets everything (after a drain, when the client that was owed is gone).
  void reset();

 private:
  void undo(Entry& e, ServerStatements& cache);
  void skip_to_sync(ServerStatements& cache);

  std::deque<Entry> owed_;
  bool skipping_ = false;  // an error arrived and no Sync was queued yet: the server skips what comes
  std::uint64_t syncs_ = 0;
  std::vector<std::pair<std::string, StatementRef>> failed_names_;
};

// Recognised statements of a simple Query, for transaction mode.
struct QueryCommand {
  // kSetSearchPath: SET [SESSION] search_path, RESET search_path or RESET ALL (it may be followed by more
  // statements; the value is read back from the server afterwards).
  enum class Kind { kOther, kListen, kDeallocate, kDeallocateAll, kDiscardAll, kSetSearchPath };
  Kind kind = Kind::kOther;
  std::string name;  // kDeallocate: the statement name, case-folded unless quoted
};
// Classifies a Query body (the SQL, NUL-terminated or not) when it is one of the statements above, alone
// (comments, whitespace and one trailing semicolon allowed; LISTEN and kSetSearchPath need only start the
// query); anything else is kOther.
[[nodiscard]] QueryCommand classify_query(std::string_view sql);

}  // namespace pooler::daemon
