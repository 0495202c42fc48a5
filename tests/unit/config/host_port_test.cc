// Tests of "host:port" parsing for hosts and metrics_listen.
#include "config/host_port.h"

#include <gtest/gtest.h>

namespace pooler::config {
namespace {

// A bare host takes the default port.
TEST(ConfigHostPort, HostAloneTakesDefaultPort) {
  EXPECT_EQ(parse_host_port("db1", 5433), (HostPort{"db1", 5433}));
}

// An explicit port wins over the default.
TEST(ConfigHostPort, HostWithPort) { EXPECT_EQ(parse_host_port("db1:6000", 5432), (HostPort{"db1", 6000})); }

// Bracketed IPv6 with and without a port, and a bare IPv6 literal taken whole.
TEST(ConfigHostPort, Ipv6Forms) {
  EXPECT_EQ(parse_host_port("[::1]:6000", 5432), (HostPort{"::1", 6000}));
  EXPECT_EQ(parse_host_port("[::1]", 5432), (HostPort{"::1", 5432}));
  EXPECT_EQ(parse_host_port("fe80::1", 5432), (HostPort{"fe80::1", 5432}));
}

// Ports outside 1..65535 or not numbers are rejected with the offending text.
TEST(ConfigHostPort, BadPorts) {
  EXPECT_EQ(parse_host_port("db:0", 5432).error(), R"(invalid port "0" in "db:0", expected a number from 1 to 65535)");
  EXPECT_FALSE(parse_host_port("db:65536", 5432));
  EXPECT_FALSE(parse_host_port("db:54x", 5432));
  EXPECT_FALSE(parse_host_port("db:", 5432));
}

// Missing host, unclosed bracket and a comma-separated list are rejected.
TEST(ConfigHostPort, BadHosts) {
  EXPECT_EQ(parse_host_port(":5432", 5432).error(), R"(missing host in ":5432")");
  EXPECT_FALSE(parse_host_port("[::1:5432", 5432));
  EXPECT_FALSE(parse_host_port("db1,db2", 5432));
}

// Without a default port (metrics_listen) the port is required.
TEST(ConfigHostPort, PortRequiredWithoutDefault) {
  EXPECT_EQ(parse_host_port("127.0.0.1", std::nullopt).error(), R"(missing port in "127.0.0.1", expected "host:port")");
  EXPECT_EQ(parse_host_port("0.0.0.0:9127", std::nullopt), (HostPort{"0.0.0.0", 9127}));
}

}  // namespace
}  // namespace pooler::config
