// The TOML spellings of the config enums, both ways: for parsing and for logs and SHOW CONFIG.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "config/config.h"

namespace pooler::config {

template <typename E>
struct EnumName {
  std::string_view name;
  E value;
};

// Every valid spelling of E, in the order the docs list them. Specialised for each config enum.
template <typename E>
[[nodiscard]] std::span<const EnumName<E>> enum_names();

template <> std::span<const EnumName<AuthType>> enum_names<AuthType>();
template <> std::span<const EnumName<PoolMode>> enum_names<PoolMode>();
template <> std::span<const EnumName<LogFormat>> enum_names<LogFormat>();
template <> std::span<const EnumName<ResetOnReturn>> enum_names<ResetOnReturn>();
template <> std::span<const EnumName<TargetSessionAttrs>> enum_names<TargetSessionAttrs>();
template <> std::span<const EnumName<ClientTlsMode>> enum_names<ClientTlsMode>();
template <> std::span<const EnumName<TlsVersion>> enum_names<TlsVersion>();
template <> std::span<const EnumName<HbaType>> enum_names<HbaType>();
template <> std::span<const EnumName<HbaMethod>> enum_names<HbaMethod>();

template <typename E>
  requires std::is_enum_v<E>
[[nodiscard]] std::optional<E> parse_enum(std::string_view text) {
  for (const auto& entry : enum_names<E>()) {
    if (entry.name == text) return entry.value;
  }
  return std::nullopt;
}

template <typename E>
  requires std::is_enum_v<E>
[[nodiscard]] std::string_view to_string(E value) {
  for (const auto& entry : enum_names<E>()) {
    if (entry.value == value) return entry.name;
  }
  return "?";
}

// The choices as an error message lists them: "\"session\", \"transaction\"".
[[nodiscard]] std::string quoted_list(std::span<const std::string_view> names);

template <typename E>
[[nodiscard]] std::string quoted_choices() {
  std::string out;
  for (const auto& entry : enum_names<E>()) {
    if (!out.empty()) out += ", ";
    out += '"';
    out += entry.name;
    out += '"';
  }
  return out;
}

}  // namespace pooler::config
