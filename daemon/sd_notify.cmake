# pooler_sd_notify: systemd's readiness notifications (READY/RELOADING/STOPPING/STATUS) without libsystemd.
# Included from daemon/CMakeLists.txt and from tests/deploy; paths are absolute so either may include it first.
if(NOT TARGET pooler_sd_notify)
  add_library(pooler_sd_notify STATIC ${CMAKE_CURRENT_LIST_DIR}/sd_notify.cc)
  target_link_libraries(pooler_sd_notify PUBLIC pooler_options)
endif()
