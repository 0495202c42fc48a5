// The ORM state a Session carries: identity map, pending/dirty/deleted objects, flush, loading (lazy, selectin,
// joined) — type-erased over EntityInfo so that it compiles once, in client/src/orm. Plus the typed results
// session.execute(select…) and session.scalars(select…) return.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "pooler/orm/statement.hpp"
#include "pooler/result.hpp"

namespace pooler::orm {

namespace detail {

class UnitOfWork : public std::enable_shared_from_this<UnitOfWork> {
 public:
  struct Hooks {
    std::function<client::Result(const Compiled&)> execute;  // in the session's transaction (autobegun)
    // ROLLBACK the session's transaction, keeping its connection: the objects are read again on it.
    std::function<void()> rollback_database;
    // Give the connection back to the pool: the transaction is over.
    std::function<void()> end_transaction;
    // Roll back to the innermost savepoint begun through begin_nested; false if there is none.
    std::function<bool()> rollback_savepoint;
  };
  // Rows of an ORM SELECT: the raw result, and per row × entity item the object (null for expression items
  // and outer-joined misses).
  struct Loaded {
    client::Result result;
    std::vector<std::shared_ptr<void>> objects;  // row-major: objects[row * items + item]
    std::size_t items = 0;
    SelectLayout layout;
    // A joinedload of a collection repeats parent rows: then only these rows (first of each parent) count.
    bool dedupe = false;
    std::vector<std::size_t> unique_rows;
  };

  UnitOfWork(Hooks hooks, bool autoflush);
  ~UnitOfWork();
  UnitOfWork(const UnitOfWork&) = delete;
  UnitOfWork& operator=(const UnitOfWork&) = delete;

  void add(const EntityInfo& info, std::shared_ptr<void> obj);
  void delete_(const EntityInfo& info, const void* obj);
  // By primary key values (one per key column, in column order).
  std::shared_ptr<void> get(const EntityInfo& info, const std::vector<client::Value>& pk);
  std::shared_ptr<void> merge(const EntityInfo& info, const void* obj);
  void refresh(const void* obj);
  void expire(const void* obj);
  void expunge(const void* obj);
  void expire_all();
  void expunge_all();
  [[nodiscard]] bool contains(const void* obj) const;
  // Whether flush() would write it (pending, marked deleted, or a column differs from what was loaded).
  [[nodiscard]] bool is_modified(const void* obj) const;
  [[nodiscard]] std::size_t size() const;  // objects held

  void flush();
  void autoflush();
  Loaded select(const SelectCore& s);
  client::Result execute_dml(const DmlCore& s);
  // Loads one relationship of one object (lazy loading).
  std::vector<std::shared_ptr<void>> load_relationship(const EntityInfo& owner, std::size_t rel, const void* parent);

  void after_commit(bool expire);
  // Session::rollback(): ROLLBACK, the session's objects put back as the database now has them (objects of the
  // transaction's INSERTs and the pending ones leave, deleted ones return, changed ones are read again), every
  // object expired, then the connection released. Rethrows a failure of the ROLLBACK after all that.
  void rollback();
  // Session::begin_nested flushed, then opened a SAVEPOINT (depth counts them from 1).
  void savepoint_begun();
  // RELEASE SAVEPOINT of the depth-th savepoint (inner ones with it).
  void savepoint_released(std::size_t depth);
  // ROLLBACK TO the depth-th savepoint: objects added since leave the session, changed ones are read again.
  void savepoint_rolled_back(std::size_t depth);

  struct Entry;  // defined in unit_of_work.cc
  struct State;

 private:
  Loaded run_select(const SelectCore& s);  // select() without autoflush
  void undo_failed_flush();
  // Flush's association-table part (many-to-many): rows for links added to and removed from collections, and
  // the rows of objects about to be deleted.
  void flush_links(const std::vector<Entry*>& work);
  // At the session's end: unload many-to-many collections with back_populates, which may hold each other.
  void release_links();
  void after_rollback();
  // The session side of a rollback of the writes made at `level` and above (1: the whole transaction, n + 1:
  // inside the n-th savepoint). Returns the objects it expired because that work changed them.
  std::vector<Entry*> undo_writes(std::uint16_t level);
  // SELECTs the rows of those objects again (the identity map loads expired objects in place).
  void read_again(const std::vector<Entry*>& stale);

  std::unique_ptr<State> state_;
};

template <class V>
struct nullable {
  using type = std::optional<V>;
};
template <class V>
struct nullable<std::optional<V>> {
  using type = std::optional<V>;
};
template <class T>
struct nullable<std::shared_ptr<T>> {
  using type = std::shared_ptr<T>;
};
template <class V>
using nullable_t = typename nullable<V>::type;

[[noreturn]] void throw_no_result();
[[noreturn]] void throw_multiple_results();

}  // namespace detail

// The first column of each row (SQLAlchemy's ScalarResult): session.scalars(select<User>()).all().
template <class V>
class ScalarResult {
 public:
  explicit ScalarResult(std::vector<V> values) : values_(std::move(values)) {}
  [[nodiscard]] const std::vector<V>& all() const& { return values_; }
  [[nodiscard]] std::vector<V> all() && { return std::move(values_); }
  [[nodiscard]] detail::nullable_t<V> first() const {
    if (values_.empty()) return {};
    return values_.front();
  }
  // Exactly one row, else NoResultFound / MultipleResultsFound.
  [[nodiscard]] V one() const {
    if (values_.empty()) detail::throw_no_result();
    if (values_.size() > 1) detail::throw_multiple_results();
    return values_.front();
  }
  [[nodiscard]] detail::nullable_t<V> one_or_none() const {
    if (values_.size() > 1) detail::throw_multiple_results();
    return first();
  }
  [[nodiscard]] auto begin() const { return values_.begin(); }
  [[nodiscard]] auto end() const { return values_.end(); }
  [[nodiscard]] std::size_t size() const { return values_.size(); }
  [[nodiscard]] bool empty() const { return values_.empty(); }

 private:
  std::vector<V> values_;
};

// Rows as tuples (SQLAlchemy's Result of an ORM select): for (auto& [user, post] : session.execute(…).all()).
template <class Row>
class Result {
 public:
  using first_type = std::tuple_element_t<0, Row>;

  explicit Result(std::vector<Row> rows) : rows_(std::move(rows)) {}
  [[nodiscard]] const std::vector<Row>& all() const& { return rows_; }
  [[nodiscard]] std::vector<Row> all() && { return std::move(rows_); }
  [[nodiscard]] std::optional<Row> first() const {
    if (rows_.empty()) return std::nullopt;
    return rows_.front();
  }
  [[nodiscard]] Row one() const {
    if (rows_.empty()) detail::throw_no_result();
    if (rows_.size() > 1) detail::throw_multiple_results();
    return rows_.front();
  }
  [[nodiscard]] std::optional<Row> one_or_none() const {
    if (rows_.size() > 1) detail::throw_multiple_results();
    return first();
  }
  [[nodiscard]] ScalarResult<first_type> scalars() const {
    std::vector<first_type> v;
    v.reserve(rows_.size());
    for (const auto& r : rows_) v.push_back(std::get<0>(r));
    return ScalarResult<first_type>(std::move(v));
  }
  // First column of the first row; empty when there is no row.
  [[nodiscard]] detail::nullable_t<first_type> scalar() const {
    if (rows_.empty()) return {};
    return std::get<0>(rows_.front());
  }
  [[nodiscard]] first_type scalar_one() const { return std::get<0>(one()); }
  [[nodiscard]] detail::nullable_t<first_type> scalar_one_or_none() const {
    auto r = one_or_none();
    if (!r) return {};
    return std::get<0>(*r);
  }
  [[nodiscard]] auto begin() const { return rows_.begin(); }
  [[nodiscard]] auto end() const { return rows_.end(); }
  [[nodiscard]] std::size_t size() const { return rows_.size(); }
  [[nodiscard]] bool empty() const { return rows_.empty(); }

 private:
  std::vector<Row> rows_;
};

namespace detail {

template <class Item>
auto item_value(UnitOfWork::Loaded& loaded, std::size_t row, std::size_t index) {
  if constexpr (requires { typename Item::result_type; }) {
    using Ptr = typename Item::result_type;
    return std::static_pointer_cast<typename Ptr::element_type>(loaded.objects[row * loaded.items + index]);
  } else {
    using V = typename Item::value_type;
    return loaded.result.row(static_cast<int>(row))
        .at(static_cast<std::size_t>(loaded.layout.item_offsets[index]))
        .template get<V>();
  }
}

template <class... Items, std::size_t... I>
std::tuple<typename item_result<Items>::type...> make_row(UnitOfWork::Loaded& loaded, std::size_t row,
                                                           std::index_sequence<I...>) {
  return {item_value<Items>(loaded, row, I)...};
}

template <class... Items>
std::vector<std::tuple<typename item_result<Items>::type...>> make_rows(UnitOfWork::Loaded&& loaded) {
  std::vector<std::tuple<typename item_result<Items>::type...>> rows;
  std::size_t n = loaded.dedupe ? loaded.unique_rows.size() : loaded.result.size();
  rows.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t r = loaded.dedupe ? loaded.unique_rows[i] : i;
    rows.push_back(make_row<Items...>(loaded, r, std::index_sequence_for<Items...>{}));
  }
  return rows;
}

// Scalars of a select whose first item is an entity: no tuple in between (the 100k-row path).
template <class T>
std::vector<std::shared_ptr<T>> entity_scalars(UnitOfWork::Loaded&& loaded) {
  std::vector<std::shared_ptr<T>> out;
  std::size_t n = loaded.dedupe ? loaded.unique_rows.size() : loaded.result.size();
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t r = loaded.dedupe ? loaded.unique_rows[i] : i;
    out.push_back(std::static_pointer_cast<T>(std::move(loaded.objects[r * loaded.items])));
  }
  return out;
}

}  // namespace detail

}  // namespace pooler::orm
