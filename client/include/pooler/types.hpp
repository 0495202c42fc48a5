// How C++ values travel to and from PostgreSQL: Value (one bound parameter: text or binary plus a type OID),
// Codec<T> (encode a T into a Value, decode a T from a result field's text), and the small wrapper types for
// SQL types with no natural C++ twin (UUID, numeric, JSON, bytea).
//
// Add a type by specialising pooler::Codec<T> with
//   static Value encode(const T&);                               // for parameters
//   static T decode(std::string_view text, std::uint32_t oid);    // for results (text format); throw
//                                                                  // ConversionError with a reason
#pragma once

#include <array>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "pooler/errors.hpp"

namespace pooler {
inline namespace client {

// PostgreSQL type OIDs we use (pg_type.dat).
namespace oid {
inline constexpr std::uint32_t kUnknown = 0;  // let the server infer the type from context
inline constexpr std::uint32_t kBool = 16;
inline constexpr std::uint32_t kBytea = 17;
inline constexpr std::uint32_t kInt8 = 20;
inline constexpr std::uint32_t kInt2 = 21;
inline constexpr std::uint32_t kInt4 = 23;
inline constexpr std::uint32_t kText = 25;
inline constexpr std::uint32_t kJson = 114;
inline constexpr std::uint32_t kFloat4 = 700;
inline constexpr std::uint32_t kFloat8 = 701;
inline constexpr std::uint32_t kDate = 1082;
inline constexpr std::uint32_t kTimestamp = 1114;
inline constexpr std::uint32_t kTimestamptz = 1184;
inline constexpr std::uint32_t kNumeric = 1700;
inline constexpr std::uint32_t kUuid = 2950;
inline constexpr std::uint32_t kJsonb = 3802;
}  // namespace oid

// The array type of an element type (int8 → int8[]), or 0 when we do not know it.
[[nodiscard]] std::uint32_t array_oid(std::uint32_t element_oid);
// A readable name for error messages ("int8", "oid 16384" when unknown).
[[nodiscard]] std::string type_name(std::uint32_t type_oid);

// bytea.
using Bytes = std::vector<std::byte>;

// uuid, as its 16 bytes.
struct Uuid {
  std::array<std::uint8_t, 16> bytes{};
  // Accepts the canonical 8-4-4-4-12 form (any case, optional braces); throws ConversionError otherwise.
  [[nodiscard]] static Uuid parse(std::string_view text);
  [[nodiscard]] std::string to_string() const;  // lower case, canonical form
  friend bool operator==(const Uuid&, const Uuid&) = default;
  friend auto operator<=>(const Uuid&, const Uuid&) = default;
};

// numeric, kept as its decimal text so no digit is lost ("12345678901234567890.000000001", "NaN").
struct Numeric {
  std::string value;
  friend bool operator==(const Numeric&, const Numeric&) = default;
};

// json and jsonb documents as text; parse them with the JSON library of your choice.
struct Json {
  std::string text;
  friend bool operator==(const Json&, const Json&) = default;
};
struct Jsonb {
  std::string text;
  friend bool operator==(const Jsonb&, const Jsonb&) = default;
};

// One bound parameter as libpq takes it. A default-constructed Value is NULL.
class Value;

template <class T>
struct Codec;  // specialised below and in user code

template <class T>
concept Encodable = requires(const T& v) {
  { Codec<T>::encode(v) } -> std::same_as<Value>;
};
template <class T>
concept Decodable = requires(std::string_view text, std::uint32_t type) {
  { Codec<T>::decode(text, type) } -> std::same_as<T>;
};

class Value {
 public:
  Value() = default;
  Value(std::nullptr_t) {}       // NOLINT: NULL
  Value(std::nullopt_t) {}       // NOLINT: NULL
  // Anything with a Codec: Value(42), Value("ann"), Value(std::optional<double>{}), Value(Uuid{...}).
  template <class T>
    requires(!std::same_as<std::decay_t<T>, Value> && Encodable<std::decay_t<T>>)
  Value(const T& v) : Value(Codec<std::decay_t<T>>::encode(v)) {}  // NOLINT: implicit by design
  // String literals decay to const char*.
  Value(const char* s) : data_(std::string(s)) {}  // NOLINT

  [[nodiscard]] static Value text(std::string data, std::uint32_t type_oid) {
    Value v;
    v.data_ = std::move(data);
    v.oid_ = type_oid;
    return v;
  }
  [[nodiscard]] static Value binary(std::string data, std::uint32_t type_oid) {
    Value v = text(std::move(data), type_oid);
    v.binary_ = true;
    return v;
  }

  [[nodiscard]] bool is_null() const { return !data_.has_value(); }
  [[nodiscard]] const std::optional<std::string>& data() const { return data_; }
  [[nodiscard]] std::uint32_t type_oid() const { return oid_; }
  [[nodiscard]] bool is_binary() const { return binary_; }
  // The value as it would appear in SQL text, for echo logs and messages (bytea shown as hex).
  [[nodiscard]] std::string repr() const;

 private:
  std::optional<std::string> data_;
  std::uint32_t oid_ = oid::kUnknown;
  bool binary_ = false;
};

// Named parameters for text(":name") statements: {{"id", 1}, {"name", "ann"}}.
using Params = std::vector<std::pair<std::string, Value>>;

namespace detail {
template <class T>
inline constexpr bool is_optional_v = false;
template <class T>
inline constexpr bool is_optional_v<std::optional<T>> = true;
[[noreturn]] void conversion_failed(std::string_view text, std::uint32_t type, std::string_view target);
std::string encode_timestamp(std::int64_t micros_since_epoch);
std::int64_t decode_timestamp(std::string_view text, std::uint32_t type);  // µs since the Unix epoch, UTC
std::string encode_date(std::int32_t days_since_epoch);
std::int32_t decode_date(std::string_view text, std::uint32_t type);
std::string encode_double(double v);
double decode_double(std::string_view text, std::uint32_t type);
std::int64_t decode_int(std::string_view text, std::uint32_t type, std::int64_t min, std::int64_t max,
                        std::string_view target);
std::uint64_t decode_uint(std::string_view text, std::uint32_t type, std::uint64_t max, std::string_view target);
// Array literal pieces: "{a,b}" ⇄ elements (nullopt = NULL). One dimension only.
std::string encode_array(const std::vector<std::optional<std::string>>& elements);
std::vector<std::optional<std::string>> decode_array(std::string_view text, std::uint32_t type);
// The text of an element as it goes into an array literal (binary bytea → hex).
std::optional<std::string> element_text(const Value& v);
// The element type of an array type (int8[] → int8), or 0.
std::uint32_t element_oid(std::uint32_t array_type);
}  // namespace detail

// --- Codecs for the built-in types ----------------------------------------------------------------------

template <>
struct Codec<bool> {
  static Value encode(bool v) { return Value::text(v ? "t" : "f", oid::kBool); }
  static bool decode(std::string_view text, std::uint32_t type);
};

template <std::integral T>
  requires(!std::same_as<T, bool> && !std::same_as<T, char>)
struct Codec<T> {
  static Value encode(T v) {
    std::uint32_t type = oid::kInt8;
    if constexpr (std::is_signed_v<T> && sizeof(T) <= 2) {
      type = oid::kInt2;
    } else if constexpr (std::is_signed_v<T> && sizeof(T) == 4) {
      type = oid::kInt4;
    } else if constexpr (std::is_unsigned_v<T> && sizeof(T) >= 8) {
      type = oid::kNumeric;  // may exceed int8
    }
    return Value::text(std::to_string(v), type);
  }
  static T decode(std::string_view text, std::uint32_t type) {
    if constexpr (std::is_signed_v<T>) {
      return static_cast<T>(detail::decode_int(text, type, std::numeric_limits<T>::min(),
                                               std::numeric_limits<T>::max(), target_name()));
    } else {
      return static_cast<T>(detail::decode_uint(text, type, std::numeric_limits<T>::max(), target_name()));
    }
  }
  static constexpr std::string_view target_name() {
    if constexpr (std::is_signed_v<T>) {
      return sizeof(T) == 1 ? "int8_t" : sizeof(T) == 2 ? "int16_t" : sizeof(T) == 4 ? "int32_t" : "int64_t";
    } else {
      return sizeof(T) == 1 ? "uint8_t" : sizeof(T) == 2 ? "uint16_t" : sizeof(T) == 4 ? "uint32_t" : "uint64_t";
    }
  }
};

template <std::floating_point T>
struct Codec<T> {
  static Value encode(T v) {
    return Value::text(detail::encode_double(static_cast<double>(v)),
                       sizeof(T) == 4 ? oid::kFloat4 : oid::kFloat8);
  }
  static T decode(std::string_view text, std::uint32_t type) {
    return static_cast<T>(detail::decode_double(text, type));
  }
};

// Strings go as "unknown" so the server infers the type from context (json, date, enum columns take them),
// as psycopg 3 does.
template <>
struct Codec<std::string> {
  static Value encode(const std::string& v) { return Value::text(v, oid::kUnknown); }
  static std::string decode(std::string_view text, std::uint32_t) { return std::string(text); }
};
template <>
struct Codec<std::string_view> {
  static Value encode(std::string_view v) { return Value::text(std::string(v), oid::kUnknown); }
};
template <>
struct Codec<const char*> {
  static Value encode(const char* v) { return Value::text(std::string(v), oid::kUnknown); }
};

template <>
struct Codec<Bytes> {
  static Value encode(const Bytes& v) {
    return Value::binary(std::string(reinterpret_cast<const char*>(v.data()), v.size()), oid::kBytea);
  }
  static Bytes decode(std::string_view text, std::uint32_t type);
};

template <>
struct Codec<Uuid> {
  static Value encode(const Uuid& v) { return Value::text(v.to_string(), oid::kUuid); }
  static Uuid decode(std::string_view text, std::uint32_t) { return Uuid::parse(text); }
};

template <>
struct Codec<Numeric> {
  static Value encode(const Numeric& v) { return Value::text(v.value, oid::kNumeric); }
  static Numeric decode(std::string_view text, std::uint32_t) { return Numeric{std::string(text)}; }
};

template <>
struct Codec<Json> {
  static Value encode(const Json& v) { return Value::text(v.text, oid::kJson); }
  static Json decode(std::string_view text, std::uint32_t) { return Json{std::string(text)}; }
};
template <>
struct Codec<Jsonb> {
  static Value encode(const Jsonb& v) { return Value::text(v.text, oid::kJsonb); }
  static Jsonb decode(std::string_view text, std::uint32_t) { return Jsonb{std::string(text)}; }
};

// timestamptz, to the microsecond (finer precision is truncated towards the past). Decoding accepts
// timestamptz in any session TimeZone (ISO DateStyle) and timestamp, read as UTC.
template <class Duration>
struct Codec<std::chrono::sys_time<Duration>> {
  using TimePoint = std::chrono::sys_time<Duration>;
  static Value encode(const TimePoint& v) {
    auto us = std::chrono::floor<std::chrono::microseconds>(v).time_since_epoch().count();
    return Value::text(detail::encode_timestamp(us), oid::kTimestamptz);
  }
  static TimePoint decode(std::string_view text, std::uint32_t type) {
    std::chrono::sys_time<std::chrono::microseconds> us{std::chrono::microseconds(detail::decode_timestamp(text, type))};
    return std::chrono::time_point_cast<Duration>(us);
  }
};

// date.
template <>
struct Codec<std::chrono::year_month_day> {
  static Value encode(const std::chrono::year_month_day& v) {
    return Value::text(detail::encode_date(std::chrono::sys_days(v).time_since_epoch().count()), oid::kDate);
  }
  static std::chrono::year_month_day decode(std::string_view text, std::uint32_t type) {
    return std::chrono::year_month_day(std::chrono::sys_days(std::chrono::days(detail::decode_date(text, type))));
  }
};

// NULL when empty.
template <class T>
struct Codec<std::optional<T>> {
  static Value encode(const std::optional<T>& v)
    requires Encodable<T>
  {
    if (!v) return Value();
    return Codec<T>::encode(*v);
  }
  static std::optional<T> decode(std::string_view text, std::uint32_t type)
    requires Decodable<T>
  {
    return Codec<T>::decode(text, type);  // NULL is handled before decode is called
  }
};

// One-dimensional arrays: std::vector<int64_t> ⇄ int8[], std::vector<std::optional<T>> for NULL elements.
template <class T>
  requires(!std::same_as<T, std::byte>)
struct Codec<std::vector<T>> {
  static Value encode(const std::vector<T>& v)
    requires Encodable<T>
  {
    std::vector<std::optional<std::string>> elements;
    elements.reserve(v.size());
    std::uint32_t element_type = element_oid_of();
    for (const auto& e : v) {
      Value ev = Codec<T>::encode(e);
      if (!ev.is_null()) element_type = ev.type_oid();
      elements.push_back(detail::element_text(ev));
    }
    std::uint32_t type = array_oid(element_type == oid::kUnknown ? oid::kText : element_type);
    return Value::text(detail::encode_array(elements), type);
  }
  static std::vector<T> decode(std::string_view text, std::uint32_t type)
    requires Decodable<T>
  {
    std::vector<T> out;
    std::uint32_t element_type = detail::element_oid(type);
    for (auto& e : detail::decode_array(text, type)) {
      if (!e) {
        if constexpr (detail::is_optional_v<T>) {
          out.emplace_back(std::nullopt);
          continue;
        } else {
          throw ConversionError("array element is NULL; use std::vector<std::optional<T>> to receive it");
        }
      }
      out.push_back(Codec<T>::decode(*e, element_type));
    }
    return out;
  }
  static std::uint32_t element_oid_of() {
    // The element type of an empty or all-NULL array: encode a default T when that is cheap and meaningful.
    if constexpr (detail::is_optional_v<T>) {
      return Codec<std::vector<typename T::value_type>>::element_oid_of();
    } else if constexpr (std::is_default_constructible_v<T> && Encodable<T>) {
      return Codec<T>::encode(T{}).type_oid();
    } else {
      return oid::kText;
    }
  }
};

}  // namespace client
}  // namespace pooler
