// The one table per enum of its TOML spellings.
#include "config/enum_names.h"

#include <array>

namespace pooler::config {

namespace {

constexpr std::array<EnumName<AuthType>, 3> kAuthTypes{{
    {"trust", AuthType::kTrust},
    {"md5", AuthType::kMd5},
    {"scram-sha-256", AuthType::kScramSha256},
}};

constexpr std::array<EnumName<PoolMode>, 2> kPoolModes{{
    {"session", PoolMode::kSession},
    {"transaction", PoolMode::kTransaction},
}};

constexpr std::array<EnumName<LogFormat>, 2> kLogFormats{{
    {"text", LogFormat::kText},
    {"json", LogFormat::kJson},
}};

constexpr std::array<EnumName<ResetOnReturn>, 3> kResets{{
    {"rollback", ResetOnReturn::kRollback},
    {"discard", ResetOnReturn::kDiscard},
    {"none", ResetOnReturn::kNone},
}};

constexpr std::array<EnumName<TargetSessionAttrs>, 6> kTargetSessionAttrs{{
    {"any", TargetSessionAttrs::kAny},
    {"read-write", TargetSessionAttrs::kReadWrite},
    {"read-only", TargetSessionAttrs::kReadOnly},
    {"primary", TargetSessionAttrs::kPrimary},
    {"standby", TargetSessionAttrs::kStandby},
    {"prefer-standby", TargetSessionAttrs::kPreferStandby},
}};

}  // namespace

template <> std::span<const EnumName<AuthType>> enum_names<AuthType>() { return kAuthTypes; }
template <> std::span<const EnumName<PoolMode>> enum_names<PoolMode>() { return kPoolModes; }
template <> std::span<const EnumName<LogFormat>> enum_names<LogFormat>() { return kLogFormats; }
template <> std::span<const EnumName<ResetOnReturn>> enum_names<ResetOnReturn>() { return kResets; }
template <> std::span<const EnumName<TargetSessionAttrs>> enum_names<TargetSessionAttrs>() {
  return kTargetSessionAttrs;
}

std::string quoted_list(std::span<const std::string_view> names) {
  std::string out;
  for (std::string_view name : names) {
    if (!out.empty()) out += ", ";
    out += '"';
    out += name;
    out += '"';
  }
  return out;
}

}  // namespace pooler::config
