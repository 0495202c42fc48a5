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

constexpr std::array<EnumName<ClientTlsMode>, 5> kClientTlsModes{{
    {"disable", ClientTlsMode::kDisable},
    {"allow", ClientTlsMode::kAllow},
    {"require", ClientTlsMode::kRequire},
    {"verify-ca", ClientTlsMode::kVerifyCa},
    {"verify-full", ClientTlsMode::kVerifyFull},
}};

constexpr std::array<EnumName<TlsVersion>, 2> kTlsVersions{{
    {"TLSv1.2", TlsVersion::kTls12},
    {"TLSv1.3", TlsVersion::kTls13},
}};

constexpr std::array<EnumName<HbaType>, 4> kHbaTypes{{
    {"local", HbaType::kLocal},
    {"host", HbaType::kHost},
    {"hostssl", HbaType::kHostSsl},
    {"hostnossl", HbaType::kHostNoSsl},
}};

constexpr std::array<EnumName<HbaMethod>, 5> kHbaMethods{{
    {"trust", HbaMethod::kTrust},
    {"reject", HbaMethod::kReject},
    {"md5", HbaMethod::kMd5},
    {"scram-sha-256", HbaMethod::kScramSha256},
    {"cert", HbaMethod::kCert},
}};

}  // namespace

template <> std::span<const EnumName<AuthType>> enum_names<AuthType>() { return kAuthTypes; }
template <> std::span<const EnumName<PoolMode>> enum_names<PoolMode>() { return kPoolModes; }
template <> std::span<const EnumName<LogFormat>> enum_names<LogFormat>() { return kLogFormats; }
template <> std::span<const EnumName<ResetOnReturn>> enum_names<ResetOnReturn>() { return kResets; }
template <> std::span<const EnumName<TargetSessionAttrs>> enum_names<TargetSessionAttrs>() {
  return kTargetSessionAttrs;
}

template <> std::span<const EnumName<ClientTlsMode>> enum_names<ClientTlsMode>() { return kClientTlsModes; }
template <> std::span<const EnumName<TlsVersion>> enum_names<TlsVersion>() { return kTlsVersions; }
template <> std::span<const EnumName<HbaType>> enum_names<HbaType>() { return kHbaTypes; }
template <> std::span<const EnumName<HbaMethod>> enum_names<HbaMethod>() { return kHbaMethods; }

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
