# pooler_daemon_ops: the operator-facing pieces of the daemon (Prometheus metrics, the /metrics HTTP server,
# the admin console, log formatting). Included from daemon/CMakeLists.txt; paths are absolute so the file
# can also be included from the unit tests' directory.
add_library(pooler_daemon_ops STATIC
  ${CMAKE_CURRENT_LIST_DIR}/admin_console.cc
  ${CMAKE_CURRENT_LIST_DIR}/http_server.cc
  ${CMAKE_CURRENT_LIST_DIR}/logging.cc
  ${CMAKE_CURRENT_LIST_DIR}/metrics.cc
)
target_link_libraries(pooler_daemon_ops PUBLIC
  pooler_options pooler_protocol pooler_config
  prometheus-cpp::core PkgConfig::LIBUV spdlog::spdlog fmt::fmt)
