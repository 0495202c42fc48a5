// Statements: select<User>() / select<User, Post>() / select(func::count(&User::id)), update<User>(),
// delete_<User>(), and the loader options (selectinload, joinedload). Builders are values: each call returns a
// new statement, as SQLAlchemy's generative methods do. compile() gives the exact SQL ($1…$n) and parameters.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "pooler/orm/expression.hpp"

namespace pooler::orm {

// SQL text with $1…$n and the values that go with it.
struct Compiled {
  std::string sql;
  std::vector<client::Value> params;
};

namespace detail {

struct SelectItem {
  const EntityInfo* entity = nullptr;  // a whole entity (all its columns), or
  NodePtr expr;                        // one expression
};
struct JoinClause {
  const EntityInfo* target = nullptr;
  NodePtr on;  // null: derived from the foreign key between target and what is already in FROM
  bool outer = false;
};
struct LoaderOption {
  enum class Kind { kSelectIn, kJoined, kLazy };
  Kind kind = Kind::kLazy;
  const EntityInfo* owner = nullptr;
  std::size_t relationship = 0;
};
struct SelectCore {
  std::vector<SelectItem> items;
  std::vector<JoinClause> joins;
  std::vector<NodePtr> where;
  std::vector<NodePtr> group_by;
  std::vector<NodePtr> having;
  std::vector<OrderBy> order_by;
  std::optional<std::int64_t> limit;
  std::optional<std::int64_t> offset;
  bool distinct = false;
  std::vector<LoaderOption> options;
};
// Where each item's columns start in a result row, and where each joinedload's columns start (-1: n/a).
struct SelectLayout {
  std::vector<int> item_offsets;
  std::vector<int> joined_offsets;  // per option
  std::vector<int> joined_items;    // per option: the item it applies to
};
Compiled compile_select(const SelectCore& s, SelectLayout* layout = nullptr);

// What the unit of work sends for the many-to-many relationship `rel` of `owner`: selectinload's query (the
// targets with the association's owner-key column last, for every key in `owner_keys`), and one association
// row's INSERT (a row already there is left alone: both sides of a back_populates pair may name it) and DELETE.
SelectCore secondary_select(const EntityInfo& owner, std::size_t rel, const std::vector<client::Value>& owner_keys);
Compiled compile_secondary_insert(const EntityInfo& owner, std::size_t rel, client::Value owner_key,
                                  client::Value target_key);
Compiled compile_secondary_delete(const EntityInfo& owner, std::size_t rel, client::Value owner_key,
                                  client::Value target_key);

struct DmlCore {
  const EntityInfo* entity = nullptr;
  bool is_delete = false;
  std::vector<std::pair<std::size_t, NodePtr>> values;  // UPDATE … SET column = value
  std::vector<NodePtr> where;
};
// `returning_pk`: append RETURNING <primary key> (the session uses it to keep its identity map in step).
Compiled compile_dml(const DmlCore& s, bool returning_pk = false);

template <class T>
struct EntityItem {
  using result_type = std::shared_ptr<T>;
};
template <class I>
struct item_result {
  using type = typename I::value_type;  // Expr<R>
};
template <class T>
struct item_result<EntityItem<T>> {
  using type = std::shared_ptr<T>;
};

template <class E>
auto as_expr(const E& e) {
  if constexpr (std::is_member_object_pointer_v<E>) {
    return col(e);
  } else {
    return Expr<typename E::value_type>(e.node());
  }
}
template <class E>
using expr_of_t = decltype(as_expr(std::declval<E>()));

}  // namespace detail

// Eager loading: one extra SELECT … WHERE fk IN (…) per relationship, after the main query.
template <class C, class R>
[[nodiscard]] detail::LoaderOption selectinload(R C::*relationship) {
  return {detail::LoaderOption::Kind::kSelectIn, &detail::entity_info<C>(), detail::relationship_index(relationship)};
}
// Eager loading in the same query, by LEFT OUTER JOIN.
template <class C, class R>
[[nodiscard]] detail::LoaderOption joinedload(R C::*relationship) {
  return {detail::LoaderOption::Kind::kJoined, &detail::entity_info<C>(), detail::relationship_index(relationship)};
}
// The default: loaded on first access.
template <class C, class R>
[[nodiscard]] detail::LoaderOption lazyload(R C::*relationship) {
  return {detail::LoaderOption::Kind::kLazy, &detail::entity_info<C>(), detail::relationship_index(relationship)};
}

// SELECT. Items are entities (rows come back as std::shared_ptr<T>, one object per primary key per session)
// and expressions (rows come back as their C++ type).
template <class... Items>
class Select {
 public:
  using row_type = std::tuple<typename detail::item_result<Items>::type...>;

  explicit Select(detail::SelectCore core) : core_(std::move(core)) {}

  [[nodiscard]] Select where(const Condition& c) const { return with([&](auto& s) { s.where.push_back(c.node()); }); }
  template <class... Cs>
  [[nodiscard]] Select where(const Condition& c, const Cs&... more) const {
    return where(c).where(more...);
  }
  // JOIN T ON condition; without a condition, ON is derived from the foreign key between T and FROM.
  template <Mapped T>
  [[nodiscard]] Select join(const Condition& on) const {
    return add_join(&detail::entity_info<T>(), on.node(), false);
  }
  template <Mapped T>
  [[nodiscard]] Select join() const {
    return add_join(&detail::entity_info<T>(), nullptr, false);
  }
  template <Mapped T>
  [[nodiscard]] Select outerjoin(const Condition& on) const {
    return add_join(&detail::entity_info<T>(), on.node(), true);
  }
  template <Mapped T>
  [[nodiscard]] Select outerjoin() const {
    return add_join(&detail::entity_info<T>(), nullptr, true);
  }
  // JOIN along a relationship: .join(&User::posts).
  template <class C, class R>
    requires requires { R::is_many; }
  [[nodiscard]] Select join(R C::*relationship, bool outer = false) const {
    const auto& owner = detail::entity_info<C>();
    const auto& rel = owner.relationships[detail::relationship_index(relationship)];
    if (rel.secondary != nullptr) {
      // Many-to-many: through the association table, as SQLAlchemy joins a secondary.
      const auto& sec = rel.secondary();
      const auto& target = rel.target();
      auto to_sec = detail::binary_node("=", detail::column_node(sec, 0),
                                        detail::column_node(owner, detail::single_pk(owner)));
      auto to_target = detail::binary_node("=", detail::column_node(target, detail::single_pk(target)),
                                           detail::column_node(sec, 1));
      return add_join(&sec, to_sec, outer).add_join(&target, to_target, outer);
    }
    return add_join(&detail::entity_info<typename R::element_type>(), relationship_on(relationship), outer);
  }
  template <class C, class R>
    requires requires { R::is_many; }
  [[nodiscard]] Select outerjoin(R C::*relationship) const {
    return join(relationship, true);
  }
  template <class... Os>
  [[nodiscard]] Select order_by(const Os&... terms) const {
    return with([&](auto& s) { (s.order_by.push_back(order_term(terms)), ...); });
  }
  template <class... Es>
  [[nodiscard]] Select group_by(const Es&... exprs) const {
    return with([&](auto& s) { (s.group_by.push_back(detail::as_expr(exprs).node()), ...); });
  }
  [[nodiscard]] Select having(const Condition& c) const { return with([&](auto& s) { s.having.push_back(c.node()); }); }
  [[nodiscard]] Select limit(std::int64_t n) const { return with([&](auto& s) { s.limit = n; }); }
  [[nodiscard]] Select offset(std::int64_t n) const { return with([&](auto& s) { s.offset = n; }); }
  [[nodiscard]] Select distinct() const { return with([&](auto& s) { s.distinct = true; }); }
  template <class... Os>
  [[nodiscard]] Select options(const Os&... opts) const {
    return with([&](auto& s) { (s.options.push_back(opts), ...); });
  }

  [[nodiscard]] Compiled compile() const { return detail::compile_select(core_); }
  [[nodiscard]] const detail::SelectCore& core() const { return core_; }

 private:
  template <class F>
  Select with(F&& f) const {
    Select s = *this;
    f(s.core_);
    return s;
  }
  Select add_join(const detail::EntityInfo* target, detail::NodePtr on, bool outer) const {
    return with([&](auto& s) { s.joins.push_back({target, std::move(on), outer}); });
  }
  template <class C, class R>
  static detail::NodePtr relationship_on(R C::*relationship) {
    const auto& owner = detail::entity_info<C>();
    const auto& rel = owner.relationships[detail::relationship_index(relationship)];
    const auto& target = rel.target();
    const auto& child = rel.child();
    const auto& parent = rel.many ? owner : target;
    return detail::binary_node("=", detail::column_node(parent, detail::single_pk(parent)),
                               detail::column_node(child, rel.fk_column()));
  }
  template <class O>
  static OrderBy order_term(const O& o) {
    if constexpr (std::same_as<O, OrderBy>) {
      return o;
    } else {
      return OrderBy{detail::as_expr(o).node(), false, true};
    }
  }

  detail::SelectCore core_;
};

// select<User>(), select<User, Post>(), select(func::count(&User::id)), select<User>(func::count(&Post::id)),
// select(&User::name): entity types first, then expressions (or member pointers) in the SELECT list.
template <class... Ts, class... Es>
[[nodiscard]] Select<detail::EntityItem<Ts>..., detail::expr_of_t<Es>...> select(const Es&... exprs) {
  static_assert((Mapped<Ts> && ...), "select<T>(): T must have a pooler::orm::mapping<T>");
  detail::SelectCore core;
  (core.items.push_back(detail::SelectItem{&detail::entity_info<Ts>(), nullptr}), ...);
  (core.items.push_back(detail::SelectItem{nullptr, detail::as_expr(exprs).node()}), ...);
  return Select<detail::EntityItem<Ts>..., detail::expr_of_t<Es>...>(std::move(core));
}

// UPDATE "users" SET … WHERE …
template <Mapped T>
class Update {
 public:
  Update() { core_.entity = &detail::entity_info<T>(); }
  [[nodiscard]] Update where(const Condition& c) const {
    Update u = *this;
    u.core_.where.push_back(c.node());
    return u;
  }
  // .values(&User::name, "ann"): one SET item; chain for more.
  template <class M, class V>
    requires detail::ValueFor<M, V>
  [[nodiscard]] Update values(M T::*member, const V& v) const {
    Update u = *this;
    u.core_.values.emplace_back(detail::column_index(member), detail::bind_as<M>(v));
    return u;
  }
  template <class M, class R>
    requires detail::Comparable<M, R>
  [[nodiscard]] Update values(M T::*member, const Expr<R>& e) const {
    Update u = *this;
    u.core_.values.emplace_back(detail::column_index(member), e.node());
    return u;
  }
  [[nodiscard]] Compiled compile() const { return detail::compile_dml(core_); }
  [[nodiscard]] const detail::DmlCore& core() const { return core_; }

 private:
  detail::DmlCore core_;
};

// DELETE FROM "users" WHERE …
template <Mapped T>
class Delete {
 public:
  Delete() {
    core_.entity = &detail::entity_info<T>();
    core_.is_delete = true;
  }
  [[nodiscard]] Delete where(const Condition& c) const {
    Delete d = *this;
    d.core_.where.push_back(c.node());
    return d;
  }
  [[nodiscard]] Compiled compile() const { return detail::compile_dml(core_); }
  [[nodiscard]] const detail::DmlCore& core() const { return core_; }

 private:
  detail::DmlCore core_;
};

template <Mapped T>
[[nodiscard]] Update<T> update() {
  return Update<T>();
}
template <Mapped T>
[[nodiscard]] Delete<T> delete_() {
  return Delete<T>();
}

}  // namespace pooler::orm
