// Declarative mapping: a specialisation of pooler::orm::mapping<T> names a struct's table, its columns (member
// pointer, column name, SQL type, constraints) and its relationships. Everything the ORM needs at run time is
// derived from it once per type (EntityInfo); whether a member's C++ type fits its SQL type is checked at
// compile time.
//
//   template <> struct pooler::orm::mapping<User> {
//     static constexpr std::string_view table = "users";
//     static inline const auto columns = std::tuple{
//         column(&User::id, "id", BigInteger).primary_key(),
//         column(&User::email, "email", String(255)).unique(),
//     };
//     static inline const auto relationships = std::tuple{
//         relationship(&User::posts, &Post::author_id).back_populates(&Post::author),
//         relationship(&User::groups, secondary("user_groups", "user_id", "group_id")),  // many-to-many
//     };
//   };
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "pooler/errors.hpp"
#include "pooler/orm/errors.hpp"
#include "pooler/types.hpp"

namespace pooler::orm {

// Specialise for each mapped struct (see the top of this file). `relationships` is optional.
template <class T>
struct mapping;

template <class T>
concept Mapped = requires {
  { mapping<T>::table } -> std::convertible_to<std::string_view>;
  mapping<T>::columns;
};

template <class T>
class Many;
template <class T>
class One;

// --- SQL types: each names its DDL and the C++ types it maps (std::optional<X> of those is nullable) -------

namespace detail {
template <class T>
struct unwrap_optional {
  using type = T;
};
template <class T>
struct unwrap_optional<std::optional<T>> {
  using type = T;
};
template <class T>
using unwrap_optional_t = typename unwrap_optional<T>::type;

template <class T>
inline constexpr bool is_sys_time_v = false;
template <class D>
inline constexpr bool is_sys_time_v<std::chrono::sys_time<D>> = true;
}  // namespace detail

// The C++ types an SQL type maps (each also as std::optional).
template <class... Ms>
struct Accepts {
  template <class M>
  static constexpr bool accepts = (std::same_as<M, Ms> || ...);
};

struct IntegerType : Accepts<std::int32_t> {
  static constexpr std::string_view ddl_name = "INTEGER";
  static constexpr std::string_view serial_name = "SERIAL";
};
struct BigIntegerType : Accepts<std::int64_t> {
  static constexpr std::string_view ddl_name = "BIGINT";
  static constexpr std::string_view serial_name = "BIGSERIAL";
};
struct SmallIntegerType : Accepts<std::int16_t> {
  static constexpr std::string_view ddl_name = "SMALLINT";
  static constexpr std::string_view serial_name = "SMALLSERIAL";
};
struct BooleanType : Accepts<bool> {
  static constexpr std::string_view ddl_name = "BOOLEAN";
};
struct DoubleType : Accepts<double> {
  static constexpr std::string_view ddl_name = "DOUBLE PRECISION";
};
struct FloatType : Accepts<float> {
  static constexpr std::string_view ddl_name = "REAL";
};
struct TextType : Accepts<std::string> {
  static constexpr std::string_view ddl_name = "TEXT";
};
// VARCHAR(length); length 0 is plain VARCHAR.
struct StringType : Accepts<std::string> {
  int length = 0;
};
// NUMERIC(precision, scale), carried as pooler::Numeric so no digit is lost.
struct NumericType : Accepts<client::Numeric> {
  int precision = 0;
  int scale = 0;
};
// Any std::chrono::sys_time precision (stored to the microsecond).
struct DateTimeType {
  static constexpr std::string_view ddl_name = "TIMESTAMP WITH TIME ZONE";
  template <class M>
  static constexpr bool accepts = detail::is_sys_time_v<M>;
};
struct DateType : Accepts<std::chrono::year_month_day> {
  static constexpr std::string_view ddl_name = "DATE";
};
struct UuidType : Accepts<client::Uuid> {
  static constexpr std::string_view ddl_name = "UUID";
};
struct JsonType : Accepts<client::Json> {
  static constexpr std::string_view ddl_name = "JSON";
};
struct JsonbType : Accepts<client::Jsonb> {
  static constexpr std::string_view ddl_name = "JSONB";
};
struct LargeBinaryType : Accepts<client::Bytes> {
  static constexpr std::string_view ddl_name = "BYTEA";
};

// SQLAlchemy's spellings.
inline constexpr IntegerType Integer{};
inline constexpr BigIntegerType BigInteger{};
inline constexpr SmallIntegerType SmallInteger{};
inline constexpr BooleanType Boolean{};
inline constexpr DoubleType Double{};
inline constexpr FloatType Float{};
inline constexpr TextType Text{};
inline constexpr DateTimeType DateTime{};
inline constexpr DateType Date{};
inline constexpr UuidType UUID{};
inline constexpr JsonType JSON{};
inline constexpr JsonbType JSONB{};
inline constexpr LargeBinaryType LargeBinary{};
[[nodiscard]] constexpr StringType String(int length = 0) { return StringType{{}, length}; }
[[nodiscard]] constexpr NumericType Numeric(int precision = 0, int scale = 0) {
  return NumericType{{}, precision, scale};
}

// Whether a member of C++ type M may be mapped as SQL type Sql (std::optional<X> when X may).
template <class Sql, class M>
concept MapsTo = Sql::template accepts<detail::unwrap_optional_t<M>> && std::equality_comparable<M> &&
                 client::Encodable<M> && client::Decodable<M>;

namespace detail {

std::string ddl_type(IntegerType, bool serial);
std::string ddl_type(BigIntegerType, bool serial);
std::string ddl_type(SmallIntegerType, bool serial);
std::string ddl_type(StringType t, bool serial);
std::string ddl_type(NumericType t, bool serial);
template <class Sql>
std::string ddl_type(Sql, bool) {
  return std::string(Sql::ddl_name);
}

struct EntityInfo;
template <class T>
const EntityInfo& entity_info();

// Where a foreign key points: resolved on first use, so mappings may refer to each other in any order.
struct ForeignKeyTarget {
  const EntityInfo& (*entity)() = nullptr;
  std::function<std::size_t()> column;  // index in the target's columns
};

template <class C, class M>
std::size_t column_index(M C::*member);

}  // namespace detail

// One mapped column. Built with column(...) and refined by chained calls; all are constexpr-friendly copies.
template <class C, class M, class Sql>
struct Column {
  using owner_type = C;
  using value_type = M;
  M C::*member;
  std::string_view name;
  Sql type;
  bool is_primary_key = false;
  bool is_unique = false;
  bool has_index = false;
  bool is_nullable = client::detail::is_optional_v<M>;  // as SQLAlchemy's Mapped[Optional[X]]
  bool is_autoincrement = true;                 // only for a single integer primary key
  std::string_view server_default_sql{};
  std::optional<detail::unwrap_optional_t<M>> python_default{};
  std::optional<detail::ForeignKeyTarget> foreign{};
  std::string_view ondelete_action{};

  // PRIMARY KEY (implies NOT NULL). An integer primary key whose value is 0 at INSERT is left to the
  // server's sequence (SERIAL/BIGSERIAL) unless autoincrement(false).
  [[nodiscard]] Column primary_key() const {
    Column c = *this;
    c.is_primary_key = true;
    c.is_nullable = false;
    return c;
  }
  [[nodiscard]] Column autoincrement(bool on) const {
    Column c = *this;
    c.is_autoincrement = on;
    return c;
  }
  [[nodiscard]] Column unique() const {
    Column c = *this;
    c.is_unique = true;
    return c;
  }
  // CREATE INDEX ix_<table>_<column>.
  [[nodiscard]] Column index() const {
    Column c = *this;
    c.has_index = true;
    return c;
  }
  [[nodiscard]] Column nullable(bool on) const {
    Column c = *this;
    c.is_nullable = on;
    return c;
  }
  // SQL put in the DDL's DEFAULT clause (SQLAlchemy's server_default). For a std::optional member left empty
  // at INSERT the column is omitted, so the server's default applies, and RETURNING reads it back.
  [[nodiscard]] Column server_default(std::string_view sql) const {
    Column c = *this;
    c.server_default_sql = sql;
    return c;
  }
  // Client-side default (SQLAlchemy's default=): used at INSERT when a std::optional member is empty. A plain
  // member's initializer already is its default.
  template <class V>
    requires std::convertible_to<V, detail::unwrap_optional_t<M>>
  [[nodiscard]] Column default_(V&& v) const {
    Column c = *this;
    c.python_default = std::forward<V>(v);
    return c;
  }
  // FOREIGN KEY (name) REFERENCES <target's table> (<target's column>); the member types must agree.
  template <class U, class N>
  [[nodiscard]] Column foreign_key(N U::*target, std::string_view ondelete = {}) const {
    static_assert(std::same_as<detail::unwrap_optional_t<N>, detail::unwrap_optional_t<M>>,
                  "pooler::orm: a foreign key column must have the C++ type of the column it references");
    Column c = *this;
    c.foreign = detail::ForeignKeyTarget{&detail::entity_info<U>, [target] { return detail::column_index(target); }};
    c.ondelete_action = ondelete;
    return c;
  }
};

// column(&User::email, "email", String(255)): the member's type must fit the SQL type (compile-time error
// otherwise, e.g. a std::string member mapped as BigInteger).
template <class C, class M, class Sql>
[[nodiscard]] Column<C, M, Sql> column(M C::*member, std::string_view name, Sql type) {
  static_assert(MapsTo<Sql, M>,
                "pooler::orm::column: the member's C++ type does not fit the SQL type (Integer: int32_t, "
                "BigInteger: int64_t, SmallInteger: int16_t, Boolean: bool, Double: double, Float: float, "
                "String/Text: std::string, Numeric: pooler::Numeric, DateTime: std::chrono::sys_time, Date: "
                "year_month_day, UUID: pooler::Uuid, JSON/JSONB: pooler::Json/Jsonb, LargeBinary: pooler::Bytes; "
                "or std::optional of those)");
  return Column<C, M, Sql>{member, name, type};
}

// relationship(&User::posts, &Post::author_id): one-to-many, the foreign key on the child.
// relationship(&Post::author, &Post::author_id): many-to-one, the foreign key on this side.
template <class C, class R, class FkOwner, class K>
struct Relationship {
  using owner_type = C;
  using member_type = R;
  R C::*member;
  K FkOwner::*fk;
  std::function<std::size_t()> back{};  // the relationship on the other side (back_populates), if any

  template <class U, class B>
  [[nodiscard]] Relationship back_populates(B U::*other) const;
};

template <class C, class T, class K>
[[nodiscard]] Relationship<C, Many<T>, T, K> relationship(Many<T> C::*member, K T::*fk) {
  return {member, fk};
}
template <class C, class T, class K>
[[nodiscard]] Relationship<C, One<T>, C, K> relationship(One<T> C::*member, K C::*fk) {
  return {member, fk};
}

// The association table of a many-to-many relationship (SQLAlchemy's secondary=): its name, the column referring
// to this side's primary key, and the column referring to the other side's. metadata<…>().create_all creates it.
struct Secondary {
  std::string_view table;
  std::string_view local_column;   // refers to the owner's primary key
  std::string_view remote_column;  // refers to the related type's primary key
};
[[nodiscard]] constexpr Secondary secondary(std::string_view table, std::string_view local_column,
                                            std::string_view remote_column) {
  return {table, local_column, remote_column};
}

// relationship(&Student::courses, secondary("enrollments", "student_id", "course_id")): many-to-many, rows of
// the association table linking the two primary keys.
template <class C, class T>
struct SecondaryRelationship {
  using owner_type = C;
  using member_type = Many<T>;
  Many<T> C::*member;
  Secondary table;
  std::function<std::size_t()> back{};  // the collection on the other side (back_populates), if any

  template <class U, class B>
  [[nodiscard]] SecondaryRelationship back_populates(B U::*other) const;
};

template <class C, class T>
[[nodiscard]] SecondaryRelationship<C, T> relationship(Many<T> C::*member, Secondary table) {
  return {member, table};
}
// Anything but a Many<U> member with secondary(): say so rather than list the overloads.
template <class C, class M>
  requires(!requires { typename M::element_type; requires std::same_as<M, Many<typename M::element_type>>; })
void relationship(M C::*, Secondary) {
  static_assert(sizeof(M) == 0,
                "pooler::orm::relationship(…, secondary(…)): a many-to-many member must be pooler::orm::Many<U> "
                "of a mapped U");
}

// --- runtime description of a mapped type (type-erased; one per T) ----------------------------------------

namespace detail {

// One field of a libpq result, read without copying.
struct RawField {
  const char* data = nullptr;
  std::size_t size = 0;
  bool null = true;
  std::uint32_t oid = 0;
  [[nodiscard]] std::string_view view() const { return {data, size}; }
};
RawField raw_field(const void* pg_result, int row, int column);

// The columns of one entity in one libpq result, resolved once per result (not per field): where they start
// and their type OIDs.
struct ResultColumns {
  const void* pg = nullptr;
  int offset = 0;
  std::vector<std::uint32_t> oids;  // per entity column
};
ResultColumns result_columns(const void* pg_result, int offset, std::size_t count);
// Fields [columns.offset, columns.offset + n) of `row` into out[0…n): two libpq calls per field (PQgetisnull
// only for empty values, since NULL reads as length 0).
void read_fields(const ResultColumns& columns, int row, std::size_t n, RawField* out);

// Loads relationship targets on first access; owned by the session, shared by the objects it loaded.
class LazyLoader {
 public:
  virtual ~LazyLoader() = default;
  // The related objects of `parent` (an object the session holds), loaded through the session.
  virtual std::vector<std::shared_ptr<void>> load(const void* parent) = 0;
};
[[noreturn]] void throw_detached(std::string_view what);
// The primary key column of an entity a relationship refers to; ArgumentError for a composite key (not
// supported as the referenced side of a relationship).
std::size_t single_pk(const EntityInfo& e);

struct ColumnInfo {
  std::string name;
  std::string ddl;  // type as in CREATE TABLE (SERIAL for autoincrementing integer keys)
  std::string plain_ddl;  // the type without SERIAL, for columns referring to this one
  bool primary_key = false;
  bool unique = false;
  bool index = false;
  bool nullable = true;
  bool autoincrement = false;  // the server assigns it when the member holds its zero value
  bool optional_member = false;  // std::optional: empty means "not given" (server default, client default)
  std::string server_default;
  std::optional<ForeignKeyTarget> foreign;
  std::string ondelete;
};

struct RelationshipInfo {
  bool many = false;                       // Many<T> (one-to-many, many-to-many) or One<T> (many-to-one)
  // Many-to-many: the association table as an entity of two columns (0 refers to the owner, 1 to the target;
  // both the primary key). Null for the other kinds, which have fk_column instead.
  const EntityInfo& (*secondary)() = nullptr;
  const EntityInfo& (*target)() = nullptr;  // the entity on the other side
  const EntityInfo& (*child)() = nullptr;   // the entity holding the foreign key
  std::function<std::size_t()> fk_column;  // index of the foreign key in child's columns
  std::function<std::size_t()> back;       // relationship index on the target; npos when none
  // On a parent object: whether loaded, the loaded objects (no loading), set them, install a lazy loader.
  bool (*loaded)(const void* obj) = nullptr;
  std::vector<std::shared_ptr<void>> (*items)(const void* obj) = nullptr;
  void (*set_items)(void* obj, std::vector<std::shared_ptr<void>> items, bool owning) = nullptr;
  void (*set_lazy)(void* obj, std::shared_ptr<LazyLoader> loader) = nullptr;
};

struct EntityInfo {
  const std::type_info* type = nullptr;
  std::string table;
  std::vector<ColumnInfo> columns;
  std::size_t pk = 0;            // index of the (first) primary key column
  std::vector<std::size_t> pks;  // every primary key column, in column order (more than one: a composite key)
  [[nodiscard]] bool composite_key() const { return pks.size() > 1; }
  std::vector<RelationshipInfo> relationships;
  std::shared_ptr<void> (*create)() = nullptr;
  // Storage for up to n objects of one result, allocated at once (an object of it lives as long as anyone
  // holds any object of it), and a new default-constructed object in it (null once it is full).
  std::shared_ptr<void> (*make_block)(std::size_t n) = nullptr;
  void* (*block_emplace)(void* block) = nullptr;
  // Reads columns [columns.offset, … + columns.size()) of `row` into obj.
  void (*load)(void* obj, const ResultColumns& columns, int row) = nullptr;
  client::Value (*encode)(const void* obj, std::size_t column) = nullptr;
  // Whether the member differs from the value a result field holds (the snapshot taken at load/flush).
  bool (*differs)(const void* obj, std::size_t column, const RawField& field) = nullptr;
  // Whether the member holds the "unset" value: empty optional, or 0 for an integer (autoincrement keys).
  bool (*is_unset)(const void* obj, std::size_t column) = nullptr;
  void (*apply_default)(void* obj, std::size_t column) = nullptr;
  void (*copy_column)(void* dst, const void* src, std::size_t column) = nullptr;
  // Sets a member from a parameter's text (foreign keys copied from the referenced key); NULL empties it.
  void (*assign)(void* obj, std::size_t column, const client::Value& v) = nullptr;
  void (*clear)(void* obj, std::size_t column) = nullptr;  // back to M{}
};

template <class T, class F, std::size_t... I>
void for_each_column_impl(F&& f, std::index_sequence<I...>) {
  (f(std::integral_constant<std::size_t, I>{}, std::get<I>(mapping<T>::columns)), ...);
}
// f(index constant, column) for each column of T.
template <class T, class F>
void for_each_column(F&& f) {
  constexpr std::size_t n = std::tuple_size_v<std::remove_cvref_t<decltype(mapping<T>::columns)>>;
  for_each_column_impl<T>(std::forward<F>(f), std::make_index_sequence<n>{});
}
// f(column) for column number i only.
template <class T, class F>
void visit_column(std::size_t i, F&& f) {
  for_each_column<T>([&](auto index, const auto& c) {
    if (index() == i) f(c);
  });
}

template <class T>
constexpr std::size_t relationship_count() {
  if constexpr (requires { mapping<T>::relationships; }) {
    return std::tuple_size_v<std::remove_cvref_t<decltype(mapping<T>::relationships)>>;
  } else {
    return 0;
  }
}

template <class C, class M>
std::size_t column_index(M C::*member) {
  std::size_t found = static_cast<std::size_t>(-1);
  for_each_column<C>([&](auto index, const auto& c) {
    if constexpr (std::same_as<std::remove_cvref_t<decltype(c.member)>, M C::*>) {
      if (c.member == member) found = index();
    }
  });
  if (found == static_cast<std::size_t>(-1)) {
    throw client::ArgumentError("pooler::orm: member of " + std::string(mapping<C>::table) + " is not a mapped column");
  }
  return found;
}

template <class C, class R>
std::size_t relationship_index(R C::*member) {
  std::size_t found = static_cast<std::size_t>(-1);
  if constexpr (relationship_count<C>() > 0) {
    std::apply(
        [&](const auto&... rels) {
          std::size_t i = 0;
          (
              [&](const auto& r) {
                if constexpr (std::same_as<std::remove_cvref_t<decltype(r.member)>, R C::*>) {
                  if (r.member == member) found = i;
                }
                ++i;
              }(rels),
              ...);
        },
        mapping<C>::relationships);
  }
  if (found == static_cast<std::size_t>(-1)) {
    throw client::ArgumentError("pooler::orm: member of " + std::string(mapping<C>::table) +
                                " is not a mapped relationship");
  }
  return found;
}

template <class T>
constexpr std::size_t column_count() {
  return std::tuple_size_v<std::remove_cvref_t<decltype(mapping<T>::columns)>>;
}

template <class T>
void load_object(void* obj, const ResultColumns& columns, int row) {
  T& o = *static_cast<T*>(obj);
  RawField fields[column_count<T>()];
  read_fields(columns, row, column_count<T>(), fields);
  for_each_column<T>([&](auto index, const auto& c) {
    using M = typename std::remove_cvref_t<decltype(c)>::value_type;
    const RawField& f = fields[index()];
    if (f.null) {
      if constexpr (client::detail::is_optional_v<M>) {
        (o.*c.member).reset();
      } else {
        throw client::ConversionError("column " + std::string(mapping<T>::table) + "." + std::string(c.name) +
                                      " is NULL; map it as std::optional");
      }
    } else {
      o.*c.member = client::Codec<M>::decode(f.view(), f.oid);
    }
  });
}

template <class T>
client::Value encode_column(const void* obj, std::size_t i) {
  client::Value out;
  visit_column<T>(i, [&](const auto& c) { out = client::Value(static_cast<const T*>(obj)->*c.member); });
  return out;
}

template <class T>
bool column_differs(const void* obj, std::size_t i, const RawField& f) {
  bool differs = true;
  visit_column<T>(i, [&](const auto& c) {
    using M = typename std::remove_cvref_t<decltype(c)>::value_type;
    const M& now = static_cast<const T*>(obj)->*c.member;
    if (f.null) {
      if constexpr (client::detail::is_optional_v<M>) differs = now.has_value();
    } else {
      differs = !(now == M(client::Codec<M>::decode(f.view(), f.oid)));
    }
  });
  return differs;
}

template <class T>
bool column_unset(const void* obj, std::size_t i) {
  bool unset = false;
  visit_column<T>(i, [&](const auto& c) {
    using M = typename std::remove_cvref_t<decltype(c)>::value_type;
    const M& now = static_cast<const T*>(obj)->*c.member;
    if constexpr (client::detail::is_optional_v<M>) {
      unset = !now.has_value();
    } else if constexpr (std::is_integral_v<M> && !std::same_as<M, bool>) {
      unset = now == M{};
    }
  });
  return unset;
}

template <class T>
void column_apply_default(void* obj, std::size_t i) {
  visit_column<T>(i, [&](const auto& c) {
    if (c.python_default) static_cast<T*>(obj)->*c.member = *c.python_default;
  });
}

template <class T>
void column_copy(void* dst, const void* src, std::size_t i) {
  visit_column<T>(i, [&](const auto& c) { static_cast<T*>(dst)->*c.member = static_cast<const T*>(src)->*c.member; });
}

template <class T>
void column_assign(void* obj, std::size_t i, const client::Value& v) {
  visit_column<T>(i, [&](const auto& c) {
    using M = typename std::remove_cvref_t<decltype(c)>::value_type;
    M& m = static_cast<T*>(obj)->*c.member;
    if (v.is_null()) {
      if constexpr (client::detail::is_optional_v<M>) m.reset();
      return;
    }
    m = client::Codec<M>::decode(*v.data(), v.type_oid());
  });
}

template <class T>
void column_clear(void* obj, std::size_t i) {
  visit_column<T>(i, [&](const auto& c) {
    using M = typename std::remove_cvref_t<decltype(c)>::value_type;
    static_cast<T*>(obj)->*c.member = M{};
  });
}

// The objects one result creates, in one allocation instead of one per object: the session hands them out as
// shared_ptrs aliasing the block's, so each stays valid while anyone holds it (and keeps the block alive).
template <class T>
class ObjectBlock {
 public:
  explicit ObjectBlock(std::size_t capacity)
      : items_(std::allocator<T>().allocate(capacity)), capacity_(capacity) {}
  ObjectBlock(const ObjectBlock&) = delete;
  ObjectBlock& operator=(const ObjectBlock&) = delete;
  ~ObjectBlock() {
    std::destroy_n(items_, size_);
    std::allocator<T>().deallocate(items_, capacity_);
  }
  // A value-initialised T (as make_shared<T>() gives), or null when the block is full.
  T* emplace() {
    if (size_ == capacity_) return nullptr;
    T* p = std::construct_at(items_ + size_);
    ++size_;
    return p;
  }

 private:
  T* items_;
  std::size_t capacity_;
  std::size_t size_ = 0;  // items_[0, size_) are constructed
};

template <class T, std::size_t I>
struct RelationshipOps {
  static const auto& rel() { return std::get<I>(mapping<T>::relationships); }
  static auto& member(void* obj) { return static_cast<T*>(obj)->*rel().member; }
  static const auto& member(const void* obj) { return static_cast<const T*>(obj)->*rel().member; }
  static bool loaded(const void* obj) { return member(obj).loaded(); }
  static std::vector<std::shared_ptr<void>> items(const void* obj) { return member(obj).erased_items(); }
  static void set_items(void* obj, std::vector<std::shared_ptr<void>> items, bool owning) {
    member(obj).set_erased_items(std::move(items), owning);
  }
  static void set_lazy(void* obj, std::shared_ptr<LazyLoader> loader) {
    member(obj).set_lazy(std::move(loader), obj);
  }
};

// The association table of relationship I of T, built on first use (it needs both sides' key columns).
EntityInfo make_secondary_info(const Secondary& table, const EntityInfo& (*owner)(), const EntityInfo& (*target)());
template <class T, std::size_t I>
const EntityInfo& secondary_info() {
  static const EntityInfo info = [] {
    const auto& r = std::get<I>(mapping<T>::relationships);
    using Target = typename std::remove_cvref_t<decltype(r)>::member_type::element_type;
    return make_secondary_info(r.table, &entity_info<T>, &entity_info<Target>);
  }();
  return info;
}
[[noreturn]] void throw_no_foreign_key(std::string_view table);

template <class T, std::size_t I>
RelationshipInfo make_relationship_info() {
  const auto& r = std::get<I>(mapping<T>::relationships);
  using R = std::remove_cvref_t<decltype(r)>;
  using Target = typename R::member_type::element_type;
  RelationshipInfo info;
  info.many = R::member_type::is_many;
  info.target = &entity_info<Target>;
  info.child = info.many ? &entity_info<Target> : &entity_info<T>;
  if constexpr (requires { r.table; }) {
    info.secondary = &secondary_info<T, I>;
    std::string table(r.table.table);
    info.fk_column = [table]() -> std::size_t { throw_no_foreign_key(table); };
  } else {
    auto fk = r.fk;
    info.fk_column = [fk] { return column_index(fk); };
  }
  info.back = r.back ? r.back : std::function<std::size_t()>([] { return static_cast<std::size_t>(-1); });
  info.loaded = &RelationshipOps<T, I>::loaded;
  info.items = &RelationshipOps<T, I>::items;
  info.set_items = &RelationshipOps<T, I>::set_items;
  info.set_lazy = &RelationshipOps<T, I>::set_lazy;
  return info;
}

template <class T, std::size_t... I>
std::vector<RelationshipInfo> make_relationships(std::index_sequence<I...>) {
  return {make_relationship_info<T, I>()...};
}

template <class T>
EntityInfo make_entity_info() {
  EntityInfo e;
  e.type = &typeid(T);
  e.table = std::string(mapping<T>::table);
  int pks = 0;
  for_each_column<T>([&](auto index, const auto& c) {
    using Col = std::remove_cvref_t<decltype(c)>;
    using Base = unwrap_optional_t<typename Col::value_type>;
    ColumnInfo ci;
    ci.name = std::string(c.name);
    ci.primary_key = c.is_primary_key;
    ci.unique = c.is_unique;
    ci.index = c.has_index;
    ci.nullable = c.is_nullable && !c.is_primary_key;
    ci.autoincrement = c.is_primary_key && c.is_autoincrement && std::is_integral_v<Base> && !std::same_as<Base, bool>;
    ci.ddl = ddl_type(c.type, ci.autoincrement);
    ci.plain_ddl = ddl_type(c.type, false);
    ci.optional_member = client::detail::is_optional_v<typename Col::value_type>;
    ci.server_default = std::string(c.server_default_sql);
    ci.foreign = c.foreign;
    ci.ondelete = std::string(c.ondelete_action);
    if (c.is_primary_key) {
      if (pks == 0) e.pk = index();
      e.pks.push_back(index());
      ++pks;
    }
    e.columns.push_back(std::move(ci));
  });
  if (pks == 0) throw client::ArgumentError("pooler::orm: mapping of table " + e.table + " has no primary key column");
  if (pks > 1) {
    // As SQLAlchemy: only a single integer key is left to a sequence by default.
    for (std::size_t i : e.pks) {
      if (e.columns[i].autoincrement) {
        e.columns[i].autoincrement = false;
        for_each_column<T>([&](auto index, const auto& c) {
          if (index() == i) e.columns[i].ddl = ddl_type(c.type, false);
        });
      }
    }
  }
  e.relationships = make_relationships<T>(std::make_index_sequence<relationship_count<T>()>{});
  e.create = [] { return std::static_pointer_cast<void>(std::make_shared<T>()); };
  e.make_block = [](std::size_t n) { return std::static_pointer_cast<void>(std::make_shared<ObjectBlock<T>>(n)); };
  e.block_emplace = [](void* block) -> void* { return static_cast<ObjectBlock<T>*>(block)->emplace(); };
  e.load = &load_object<T>;
  e.encode = &encode_column<T>;
  e.differs = &column_differs<T>;
  e.is_unset = &column_unset<T>;
  e.apply_default = &column_apply_default<T>;
  e.copy_column = &column_copy<T>;
  e.assign = &column_assign<T>;
  e.clear = &column_clear<T>;
  return e;
}

// Built on first use; cross-entity references inside are resolved lazily, so there is no init-order issue.
template <class T>
const EntityInfo& entity_info() {
  static_assert(Mapped<T>, "pooler::orm: specialise pooler::orm::mapping<T> (table, columns) for this type");
  static const EntityInfo info = make_entity_info<T>();
  return info;
}

}  // namespace detail

template <class C, class R, class FkOwner, class K>
template <class U, class B>
Relationship<C, R, FkOwner, K> Relationship<C, R, FkOwner, K>::back_populates(B U::*other) const {
  static_assert(std::same_as<U, typename R::element_type>, "back_populates names a member of the related type");
  Relationship r = *this;
  r.back = [other] { return detail::relationship_index(other); };
  return r;
}

template <class C, class T>
template <class U, class B>
SecondaryRelationship<C, T> SecondaryRelationship<C, T>::back_populates(B U::*other) const {
  static_assert(std::same_as<U, T>, "back_populates names a member of the related type");
  static_assert(std::same_as<B, Many<C>>, "back_populates of a many-to-many names the Many<> on the other side");
  SecondaryRelationship r = *this;
  r.back = [other] { return detail::relationship_index(other); };
  return r;
}

// --- relationship members ----------------------------------------------------------------------------------

// One-to-many collection (User::posts). Owns its elements. A collection of an object the session loaded is
// loaded on first access (lazy), or up front by selectinload/joinedload. A copy of the struct gets a copy of
// what is loaded, without the loader (the copy is not in any session).
template <class T>
class Many {
 public:
  using element_type = T;
  using value_type = std::shared_ptr<T>;
  static constexpr bool is_many = true;

  Many() = default;
  Many(std::initializer_list<std::shared_ptr<T>> items) : items_(items) {}
  Many(const Many& o) : items_(o.items_), loaded_(o.loaded_) {}
  Many& operator=(const Many& o) {
    items_ = o.items_;
    loaded_ = o.loaded_;
    lazy_.reset();
    return *this;
  }
  Many(Many&&) noexcept = default;
  Many& operator=(Many&&) noexcept = default;

  [[nodiscard]] auto begin() const { return load().begin(); }
  [[nodiscard]] auto end() const { return load().end(); }
  [[nodiscard]] std::size_t size() const { return load().size(); }
  [[nodiscard]] bool empty() const { return load().empty(); }
  [[nodiscard]] const std::shared_ptr<T>& operator[](std::size_t i) const { return load()[i]; }
  [[nodiscard]] const std::vector<std::shared_ptr<T>>& all() const { return load(); }
  // Appends (loading the collection first, as SQLAlchemy does); flush inserts it and sets its foreign key.
  std::shared_ptr<T> add(std::shared_ptr<T> item) {
    load();
    items_.push_back(item);
    return item;
  }
  std::shared_ptr<T> add(T item) { return add(std::make_shared<T>(std::move(item))); }
  void push_back(std::shared_ptr<T> item) { add(std::move(item)); }
  // Removes it from the collection (flush then sets its foreign key to NULL, as SQLAlchemy does; of a
  // many-to-many collection, flush deletes the association row).
  void remove(const std::shared_ptr<T>& item) {
    load();
    std::erase(items_, item);
  }
  [[nodiscard]] bool loaded() const { return loaded_; }

  // For the session.
  [[nodiscard]] std::vector<std::shared_ptr<void>> erased_items() const {
    return {items_.begin(), items_.end()};
  }
  void set_erased_items(std::vector<std::shared_ptr<void>> items, bool) {
    items_.clear();
    items_.reserve(items.size());
    for (auto& i : items) items_.push_back(std::static_pointer_cast<T>(std::move(i)));
    loaded_ = true;
    lazy_.reset();
  }
  void set_lazy(std::shared_ptr<detail::LazyLoader> loader, const void* parent) {
    lazy_ = std::move(loader);
    parent_ = parent;
    loaded_ = false;
    items_.clear();
  }

 private:
  const std::vector<std::shared_ptr<T>>& load() const {
    if (!loaded_) {
      if (!lazy_) detail::throw_detached("collection");
      auto loader = lazy_;  // loading replaces lazy_ through set_erased_items
      auto items = loader->load(parent_);
      const_cast<Many*>(this)->set_erased_items(std::move(items), true);  // touches mutable members only
    }
    return items_;
  }

  // mutable: loading on first access is not a change of the object's value.
  mutable std::vector<std::shared_ptr<T>> items_;
  mutable bool loaded_ = true;  // a new object's collection is loaded (and empty)
  mutable std::shared_ptr<detail::LazyLoader> lazy_;
  const void* parent_ = nullptr;
};

// Many-to-one reference (Post::author). Assigned by you it owns its target; filled by the session (lazy load,
// eager load, back_populates) it does not — the session's identity map and your own pointers keep the target
// alive — so parent ↔ children graphs never form shared_ptr cycles.
template <class T>
class One {
 public:
  using element_type = T;
  static constexpr bool is_many = false;

  One() = default;
  One(std::shared_ptr<T> target) : strong_(std::move(target)) {}  // NOLINT: assignment from a pointer
  One(std::nullptr_t) {}                                          // NOLINT
  One(const One& o) : strong_(o.strong_), weak_(o.weak_), weak_set_(o.weak_set_), loaded_(o.loaded_) {}
  One& operator=(const One& o) {
    strong_ = o.strong_;
    weak_ = o.weak_;
    weak_set_ = o.weak_set_;
    loaded_ = o.loaded_;
    lazy_.reset();
    return *this;
  }
  One(One&&) noexcept = default;
  One& operator=(One&&) noexcept = default;
  One& operator=(std::nullptr_t) { return *this = std::shared_ptr<T>(); }
  One& operator=(std::shared_ptr<T> target) {
    strong_ = std::move(target);
    weak_.reset();
    weak_set_ = false;
    loaded_ = true;
    lazy_.reset();
    return *this;
  }

  // The target (loading it if needed); null when there is none. A target the session filled in and that has
  // since been freed (its session closed, nothing else holding it) is loaded again, or DetachedInstanceError.
  [[nodiscard]] std::shared_ptr<T> get() const {
    if (loaded_ && !strong_ && weak_set_ && weak_.expired()) loaded_ = false;
    if (!loaded_) {
      if (!lazy_) detail::throw_detached("reference");
      auto loader = lazy_;
      auto items = loader->load(parent_);
      const_cast<One*>(this)->set_erased_items(std::move(items), false);  // touches mutable members only
    }
    if (strong_) return strong_;
    return weak_.lock();
  }
  T* operator->() const { return get().get(); }
  explicit operator bool() const { return get() != nullptr; }
  [[nodiscard]] bool loaded() const { return loaded_; }

  // For the session.
  [[nodiscard]] std::vector<std::shared_ptr<void>> erased_items() const {
    if (!loaded_) return {};
    auto p = strong_ ? strong_ : weak_.lock();
    if (!p) return {};
    return {std::static_pointer_cast<void>(p)};
  }
  void set_erased_items(std::vector<std::shared_ptr<void>> items, bool owning) {
    auto p = items.empty() ? nullptr : std::static_pointer_cast<T>(items.front());
    strong_.reset();
    weak_.reset();
    if (owning) {
      strong_ = p;
      lazy_.reset();
    } else {
      weak_ = p;  // the loader stays, to load it again should it go away
    }
    weak_set_ = !owning && p != nullptr;
    loaded_ = true;
  }
  void set_lazy(std::shared_ptr<detail::LazyLoader> loader, const void* parent) {
    lazy_ = std::move(loader);
    parent_ = parent;
    loaded_ = false;
    strong_.reset();
    weak_.reset();
    weak_set_ = false;
  }

 private:
  mutable std::shared_ptr<T> strong_;
  mutable std::weak_ptr<T> weak_;
  mutable bool weak_set_ = false;  // weak_ was given a target (so expired means "gone", not "none")
  mutable bool loaded_ = true;
  mutable std::shared_ptr<detail::LazyLoader> lazy_;
  const void* parent_ = nullptr;
};

}  // namespace pooler::orm
