// What a statement returns, after libpqxx: a Result shares ownership of the PGresult, so Rows and Fields
// taken from it stay valid after the Result, the transaction and the connection are gone. Accessors follow
// SQLAlchemy 2.0's Result (all, first, one, one_or_none, scalar, scalar_one, scalars, mappings, columns).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "pooler/errors.hpp"
#include "pooler/types.hpp"

struct pg_result;  // libpq's PGresult

namespace pooler {
inline namespace client {

namespace detail {
struct ResultData;
}  // namespace detail

// One value of one row.
class Field {
 public:
  Field(std::shared_ptr<const detail::ResultData> data, int row, int column)
      : data_(std::move(data)), row_(row), column_(column) {}

  [[nodiscard]] std::string_view name() const;
  [[nodiscard]] bool is_null() const;
  // The value's text as the server sent it (empty for NULL).
  [[nodiscard]] std::string_view view() const;
  [[nodiscard]] std::uint32_t type_oid() const;
  // Typed value: T, or std::optional<T> to accept NULL. Throws ConversionError naming the column.
  template <class T>
  [[nodiscard]] T get() const;
  template <class T>
  [[nodiscard]] T as() const { return get<T>(); }

 private:
  [[noreturn]] void null_error() const;
  [[noreturn]] void rethrow_conversion(const ConversionError& e) const;

  std::shared_ptr<const detail::ResultData> data_;
  int row_;
  int column_;  // position in the result's (possibly narrowed) columns
};

// One row: indexable by position or column name; get<T>(), and as_tuple<T...>() for structured bindings.
class Row {
 public:
  Row(std::shared_ptr<const detail::ResultData> data, int row) : data_(std::move(data)), row_(row) {}

  [[nodiscard]] std::size_t size() const;
  [[nodiscard]] Field operator[](std::size_t column) const;
  [[nodiscard]] Field operator[](std::string_view name) const;
  [[nodiscard]] Field at(std::size_t column) const;  // throws InvalidRequestError when out of range
  [[nodiscard]] Field at(std::string_view name) const;
  template <class T>
  [[nodiscard]] T get(std::size_t column) const {
    return at(column).template get<T>();
  }
  template <class T>
  [[nodiscard]] T get(std::string_view name) const {
    return at(name).template get<T>();
  }
  // auto [id, name] = row.as_tuple<std::int64_t, std::string>();
  template <class... Ts>
  [[nodiscard]] std::tuple<Ts...> as_tuple() const {
    return as_tuple_impl<Ts...>(std::index_sequence_for<Ts...>{});
  }
  [[nodiscard]] std::vector<std::string> keys() const;
  [[nodiscard]] bool contains(std::string_view name) const;
  [[nodiscard]] int index() const { return row_; }

 private:
  template <class... Ts, std::size_t... Is>
  std::tuple<Ts...> as_tuple_impl(std::index_sequence<Is...>) const {
    return std::tuple<Ts...>(get<Ts>(Is)...);
  }

  std::shared_ptr<const detail::ResultData> data_;
  int row_;
};

// A row seen as a mapping of column name → Field (SQLAlchemy's RowMapping).
class RowMapping {
 public:
  explicit RowMapping(Row row) : row_(std::move(row)) {}
  [[nodiscard]] Field operator[](std::string_view name) const { return row_.at(name); }
  template <class T>
  [[nodiscard]] T get(std::string_view name) const {
    return row_.get<T>(name);
  }
  [[nodiscard]] std::vector<std::string> keys() const { return row_.keys(); }
  [[nodiscard]] bool contains(std::string_view name) const { return row_.contains(name); }
  [[nodiscard]] std::size_t size() const { return row_.size(); }

 private:
  Row row_;
};

template <class T>
class ScalarResult;

class Result {
 public:
  class iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = Row;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = Row;
    iterator() = default;
    iterator(const Result* result, int row) : result_(result), row_(row) {}
    Row operator*() const { return result_->row(row_); }
    iterator& operator++() {
      ++row_;
      return *this;
    }
    iterator operator++(int) {
      iterator old = *this;
      ++row_;
      return old;
    }
    friend bool operator==(const iterator& a, const iterator& b) { return a.row_ == b.row_; }

   private:
    const Result* result_ = nullptr;
    int row_ = 0;
  };

  Result() = default;  // no rows, no columns
  // Takes ownership of a PGresult whose status is COMMAND_OK or TUPLES_OK.
  explicit Result(pg_result* result);

  [[nodiscard]] iterator begin() const { return iterator(this, 0); }
  [[nodiscard]] iterator end() const { return iterator(this, static_cast<int>(size())); }
  [[nodiscard]] std::size_t size() const;  // rows
  [[nodiscard]] bool empty() const { return size() == 0; }
  [[nodiscard]] Row row(int index) const;
  [[nodiscard]] Row operator[](std::size_t index) const { return row(static_cast<int>(index)); }

  // Rows touched by INSERT/UPDATE/DELETE (or returned by SELECT), as SQLAlchemy's CursorResult.rowcount.
  [[nodiscard]] std::int64_t rowcount() const;
  // Whether the statement returns rows at all (SELECT, … RETURNING).
  [[nodiscard]] bool returns_rows() const;
  [[nodiscard]] std::vector<std::string> keys() const;  // column names
  [[nodiscard]] std::size_t column_count() const;

  [[nodiscard]] std::vector<Row> all() const;
  [[nodiscard]] std::optional<Row> first() const;
  // Exactly one row, else NoResultFound / MultipleResultsFound.
  [[nodiscard]] Row one() const;
  [[nodiscard]] std::optional<Row> one_or_none() const;

  // First column of the first row; nullopt for no row or NULL.
  template <class T>
  [[nodiscard]] std::optional<T> scalar() const {
    auto r = first();
    if (!r) return std::nullopt;
    return r->at(std::size_t{0}).template get<std::optional<T>>();
  }
  // First column of exactly one row.
  template <class T>
  [[nodiscard]] T scalar_one() const {
    return one().at(std::size_t{0}).template get<T>();
  }
  template <class T>
  [[nodiscard]] std::optional<T> scalar_one_or_none() const {
    auto r = one_or_none();
    if (!r) return std::nullopt;
    return r->at(std::size_t{0}).template get<std::optional<T>>();
  }
  // The first column of every row as T.
  template <class T>
  [[nodiscard]] ScalarResult<T> scalars() const;
  [[nodiscard]] std::vector<RowMapping> mappings() const;
  // The same rows narrowed to these columns, in this order (by name or position).
  [[nodiscard]] Result columns(std::initializer_list<std::string_view> names) const;
  [[nodiscard]] Result columns(std::initializer_list<int> positions) const;
  // The libpq result itself, shared (the ORM's row loader reads it directly; columns() narrowing does not
  // apply to it). Null for a default-constructed Result.
  [[nodiscard]] std::shared_ptr<pg_result> driver_result() const;

 private:
  explicit Result(std::shared_ptr<const detail::ResultData> data) : data_(std::move(data)) {}
  std::shared_ptr<const detail::ResultData> data_;
};

// Values of one column converted to T (SQLAlchemy's ScalarResult).
template <class T>
class ScalarResult {
 public:
  explicit ScalarResult(Result result) : result_(std::move(result)) {}
  [[nodiscard]] std::vector<T> all() const {
    std::vector<T> out;
    out.reserve(result_.size());
    for (const Row& r : result_) out.push_back(r.at(std::size_t{0}).template get<T>());
    return out;
  }
  [[nodiscard]] std::optional<T> first() const {
    if (result_.empty()) return std::nullopt;
    return result_.row(0).at(std::size_t{0}).template get<T>();
  }
  [[nodiscard]] T one() const { return result_.one().at(std::size_t{0}).template get<T>(); }
  [[nodiscard]] std::optional<T> one_or_none() const {
    auto r = result_.one_or_none();
    if (!r) return std::nullopt;
    return r->at(std::size_t{0}).template get<T>();
  }
  [[nodiscard]] std::size_t size() const { return result_.size(); }

 private:
  Result result_;
};

template <class T>
ScalarResult<T> Result::scalars() const {
  return ScalarResult<T>(*this);
}

template <class T>
T Field::get() const {
  if (is_null()) {
    if constexpr (detail::is_optional_v<T>) {
      return T{};
    } else {
      null_error();
    }
  }
  try {
    if constexpr (detail::is_optional_v<T>) {
      return T(Codec<typename T::value_type>::decode(view(), type_oid()));
    } else {
      return Codec<T>::decode(view(), type_oid());
    }
  } catch (const ConversionError& e) {
    rethrow_conversion(e);
  }
}

}  // namespace client
}  // namespace pooler
