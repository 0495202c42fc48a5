// SQL expressions over mapped columns: col(&User::name) == "ann", and_/or_/not_, in_, like, between, is_(nullptr),
// func::count/sum/avg/min/max, asc/desc. A typed front (Expr<R>: R is the C++ type the expression yields, so
// comparing a std::string column with an int does not compile) over an untyped tree the compiler renders;
// values always become bound parameters.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "pooler/orm/mapping.hpp"

namespace pooler::orm {

namespace detail {

struct Node;
using NodePtr = std::shared_ptr<const Node>;

// One node of an expression tree.
struct Node {
  enum class Kind {
    kColumn,     // entity.columns[column]
    kParam,      // value, bound as $n
    kBinary,     // args[0] op args[1]   (=, <>, <, LIKE, ILIKE, …)
    kAnd,        // args joined by AND
    kOr,         // args joined by OR
    kNot,        // NOT args[0]
    kIsNull,     // args[0] IS NULL       (op "IS NOT" for IS NOT NULL)
    kIn,         // args[0] IN (args[1..])
    kBetween,    // args[0] BETWEEN args[1] AND args[2]
    kFunction,   // op(args...), op(*) when args is empty
  };
  Kind kind = Kind::kParam;
  const EntityInfo* entity = nullptr;
  std::size_t column = 0;
  client::Value value;
  std::string op;
  std::vector<NodePtr> args;
};

NodePtr column_node(const EntityInfo& entity, std::size_t column);
NodePtr param_node(client::Value value);
NodePtr binary_node(std::string op, NodePtr l, NodePtr r);
NodePtr list_node(Node::Kind kind, std::vector<NodePtr> args, std::string op = {});

template <class L, class R>
concept Comparable =
    std::same_as<unwrap_optional_t<L>, unwrap_optional_t<R>> ||
    (std::is_arithmetic_v<unwrap_optional_t<L>> && std::is_arithmetic_v<unwrap_optional_t<R>> &&
     !std::same_as<unwrap_optional_t<L>, bool> && !std::same_as<unwrap_optional_t<R>, bool>);

template <class L, class V>
concept ValueFor = std::convertible_to<const V&, unwrap_optional_t<L>> &&
                   !std::same_as<std::remove_cvref_t<V>, std::nullopt_t> &&
                   !std::same_as<std::remove_cvref_t<V>, std::nullptr_t>;

}  // namespace detail

// An expression yielding R (bool for conditions).
template <class R>
class Expr {
 public:
  using value_type = R;
  Expr() = default;
  explicit Expr(detail::NodePtr node) : node_(std::move(node)) {}
  [[nodiscard]] const detail::NodePtr& node() const { return node_; }

 private:
  detail::NodePtr node_;
};

using Condition = Expr<bool>;

// ORDER BY term.
struct OrderBy {
  detail::NodePtr expr;
  bool descending = false;
  bool bare = false;  // no ASC/DESC written (order_by(expr) rather than asc(expr))
};

template <class R>
[[nodiscard]] OrderBy asc(const Expr<R>& e) {
  return {e.node(), false};
}
template <class R>
[[nodiscard]] OrderBy desc(const Expr<R>& e) {
  return {e.node(), true};
}

namespace detail {
template <class L, class V>
NodePtr bind_as(const V& v) {
  return param_node(client::Value(static_cast<unwrap_optional_t<L>>(v)));
}
}  // namespace detail

// A mapped column: col(&User::name). M is the member's type.
template <class M>
class ColumnExpr : public Expr<M> {
 public:
  using Expr<M>::Expr;
  using Expr<M>::node;

  [[nodiscard]] Condition like(std::string_view pattern) const
    requires std::same_as<detail::unwrap_optional_t<M>, std::string>
  {
    return Condition(detail::binary_node("LIKE", node(), detail::param_node(client::Value(std::string(pattern)))));
  }
  [[nodiscard]] Condition ilike(std::string_view pattern) const
    requires std::same_as<detail::unwrap_optional_t<M>, std::string>
  {
    return Condition(detail::binary_node("ILIKE", node(), detail::param_node(client::Value(std::string(pattern)))));
  }
  // IN ($1, $2, …), one parameter per value (an empty list is always false).
  template <class V>
    requires detail::ValueFor<M, V>
  [[nodiscard]] Condition in_(std::initializer_list<V> values) const {
    return in_range(values);
  }
  template <std::ranges::input_range Range>
    requires detail::ValueFor<M, std::ranges::range_value_t<Range>>
  [[nodiscard]] Condition in_(const Range& values) const {
    return in_range(values);
  }
  [[nodiscard]] Condition is_(std::nullptr_t) const {
    return Condition(detail::list_node(detail::Node::Kind::kIsNull, {node()}, "IS"));
  }
  [[nodiscard]] Condition is_not(std::nullptr_t) const {
    return Condition(detail::list_node(detail::Node::Kind::kIsNull, {node()}, "IS NOT"));
  }
  template <class A, class B>
    requires detail::ValueFor<M, A> && detail::ValueFor<M, B>
  [[nodiscard]] Condition between(const A& low, const B& high) const {
    return Condition(detail::list_node(detail::Node::Kind::kBetween,
                                       {node(), detail::bind_as<M>(low), detail::bind_as<M>(high)}));
  }
  [[nodiscard]] OrderBy asc() const { return {node(), false}; }
  [[nodiscard]] OrderBy desc() const { return {node(), true}; }

 private:
  template <class Range>
  Condition in_range(const Range& values) const {
    std::vector<detail::NodePtr> args{node()};
    for (const auto& v : values) args.push_back(detail::bind_as<M>(v));
    return Condition(detail::list_node(detail::Node::Kind::kIn, std::move(args)));
  }
};

// col(&User::name): the column a member is mapped to.
template <class C, class M>
[[nodiscard]] ColumnExpr<M> col(M C::*member) {
  return ColumnExpr<M>(detail::column_node(detail::entity_info<C>(), detail::column_index(member)));
}
template <class C, class M>
[[nodiscard]] OrderBy asc(M C::*member) {
  return col(member).asc();
}
template <class C, class M>
[[nodiscard]] OrderBy desc(M C::*member) {
  return col(member).desc();
}

// --- comparisons: expression vs value (bound) and expression vs expression ---------------------------------

namespace detail {
template <class L, class V>
Condition compare(const char* op, const Expr<L>& l, const V& v) {
  if constexpr (requires { v.node(); }) {
    return Condition(binary_node(op, l.node(), v.node()));
  } else {
    return Condition(binary_node(op, l.node(), bind_as<L>(v)));
  }
}
template <class L, class V>
concept Operand = ValueFor<L, V> || (requires(const V& v) { v.node(); } &&
                                     Comparable<L, typename V::value_type>);
}  // namespace detail

template <class L, class V>
  requires detail::Operand<L, V>
[[nodiscard]] Condition operator==(const Expr<L>& l, const V& v) {
  return detail::compare("=", l, v);
}
template <class L, class V>
  requires detail::Operand<L, V>
[[nodiscard]] Condition operator!=(const Expr<L>& l, const V& v) {
  return detail::compare("!=", l, v);
}
template <class L, class V>
  requires detail::Operand<L, V>
[[nodiscard]] Condition operator<(const Expr<L>& l, const V& v) {
  return detail::compare("<", l, v);
}
template <class L, class V>
  requires detail::Operand<L, V>
[[nodiscard]] Condition operator<=(const Expr<L>& l, const V& v) {
  return detail::compare("<=", l, v);
}
template <class L, class V>
  requires detail::Operand<L, V>
[[nodiscard]] Condition operator>(const Expr<L>& l, const V& v) {
  return detail::compare(">", l, v);
}
template <class L, class V>
  requires detail::Operand<L, V>
[[nodiscard]] Condition operator>=(const Expr<L>& l, const V& v) {
  return detail::compare(">=", l, v);
}

// col == std::nullopt / nullptr renders IS NULL, as SQLAlchemy's `== None`.
template <class L>
[[nodiscard]] Condition operator==(const Expr<L>& l, std::nullopt_t) {
  return Condition(detail::list_node(detail::Node::Kind::kIsNull, {l.node()}, "IS"));
}
template <class L>
[[nodiscard]] Condition operator!=(const Expr<L>& l, std::nullopt_t) {
  return Condition(detail::list_node(detail::Node::Kind::kIsNull, {l.node()}, "IS NOT"));
}

template <class... Cs>
  requires(std::convertible_to<Cs, Condition> && ...)
[[nodiscard]] Condition and_(const Cs&... cs) {
  return Condition(detail::list_node(detail::Node::Kind::kAnd, {Condition(cs).node()...}));
}
template <class... Cs>
  requires(std::convertible_to<Cs, Condition> && ...)
[[nodiscard]] Condition or_(const Cs&... cs) {
  return Condition(detail::list_node(detail::Node::Kind::kOr, {Condition(cs).node()...}));
}
[[nodiscard]] inline Condition not_(const Condition& c) {
  return Condition(detail::list_node(detail::Node::Kind::kNot, {c.node()}));
}
[[nodiscard]] inline Condition operator&&(const Condition& a, const Condition& b) { return and_(a, b); }
[[nodiscard]] inline Condition operator||(const Condition& a, const Condition& b) { return or_(a, b); }
[[nodiscard]] inline Condition operator!(const Condition& c) { return not_(c); }

// --- aggregates --------------------------------------------------------------------------------------------

namespace func {

namespace detail {
template <class R>
Expr<R> call(const char* name, std::vector<orm::detail::NodePtr> args) {
  return Expr<R>(orm::detail::list_node(orm::detail::Node::Kind::kFunction, std::move(args), name));
}
}  // namespace detail

// count(*)
[[nodiscard]] inline Expr<std::int64_t> count() { return detail::call<std::int64_t>("count", {}); }
template <class R>
[[nodiscard]] Expr<std::int64_t> count(const Expr<R>& e) {
  return detail::call<std::int64_t>("count", {e.node()});
}
template <class C, class M>
[[nodiscard]] Expr<std::int64_t> count(M C::*member) {
  return count(col(member));
}

// sum/min/max yield the column's type (NULL over no rows, hence optional); avg a double.
template <class R>
[[nodiscard]] Expr<std::optional<orm::detail::unwrap_optional_t<R>>> sum(const Expr<R>& e) {
  return detail::call<std::optional<orm::detail::unwrap_optional_t<R>>>("sum", {e.node()});
}
template <class C, class R>
[[nodiscard]] Expr<std::optional<orm::detail::unwrap_optional_t<R>>> sum(R C::*member) {
  return sum(col(member));
}
template <class R>
[[nodiscard]] Expr<std::optional<orm::detail::unwrap_optional_t<R>>> min(const Expr<R>& e) {
  return detail::call<std::optional<orm::detail::unwrap_optional_t<R>>>("min", {e.node()});
}
template <class C, class R>
[[nodiscard]] Expr<std::optional<orm::detail::unwrap_optional_t<R>>> min(R C::*member) {
  return min(col(member));
}
template <class R>
[[nodiscard]] Expr<std::optional<orm::detail::unwrap_optional_t<R>>> max(const Expr<R>& e) {
  return detail::call<std::optional<orm::detail::unwrap_optional_t<R>>>("max", {e.node()});
}
template <class C, class R>
[[nodiscard]] Expr<std::optional<orm::detail::unwrap_optional_t<R>>> max(R C::*member) {
  return max(col(member));
}
template <class R>
[[nodiscard]] Expr<std::optional<double>> avg(const Expr<R>& e) {
  return detail::call<std::optional<double>>("avg", {e.node()});
}
template <class C, class R>
[[nodiscard]] Expr<std::optional<double>> avg(R C::*member) {
  return avg(col(member));
}

}  // namespace func

}  // namespace pooler::orm
