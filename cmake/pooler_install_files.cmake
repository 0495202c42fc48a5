# Runs at install time (install(SCRIPT) from cmake/PoolerInstall.cmake), when CMAKE_INSTALL_PREFIX is the
# real prefix: places /etc/pooler/pooler.toml and the systemd unit as the table there describes.
# file(INSTALL) with an absolute destination adds $DESTDIR itself and records the file in the manifest.

set(_prefix "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/+$" "" _prefix "${_prefix}")

# The GNU/FHS rule GNUInstallDirs applies to SYSCONFDIR, decided now instead of when configuring.
if(_prefix STREQUAL "" OR _prefix STREQUAL "/usr")
  set(_etc "/etc")
elseif(_prefix MATCHES "^/opt/")
  set(_etc "/etc${_prefix}")
else()
  set(_etc "${_prefix}/etc")
endif()
set(_config "${_etc}/pooler/pooler.toml")

# The config. An existing one that differs is an administrator's: keep it, put ours beside it as .dist.
# (The .deb has no such file on a fresh install and lets dpkg's conffile handling decide on upgrades.)
set(_config_src "${POOLER_DEPLOY_DIR}/pooler.toml")
set(_config_dest "$ENV{DESTDIR}${_config}")
set(_config_name "pooler.toml")
if(EXISTS "${_config_dest}")
  file(SHA256 "${_config_dest}" _have)
  file(SHA256 "${_config_src}" _want)
  if(NOT _have STREQUAL _want)
    message(STATUS "Keeping the existing ${_config_dest}; installing the packaged default as pooler.toml.dist")
    set(_config_name "pooler.toml.dist")
  endif()
endif()
# 0644 here: the shipped file holds no password. The .deb's postinst makes it root:pooler 0640.
file(INSTALL DESTINATION "${_etc}/pooler" TYPE FILE RENAME "${_config_name}"
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ FILES "${_config_src}")

if(POOLER_INSTALL_SYSTEMD_UNIT)
  set(_unit_src "${POOLER_DEPLOY_DIR}/pooler.service")
  if(_prefix STREQUAL "/usr")
    set(_unit_dir "${POOLER_SYSTEMD_UNIT_DIR}")
  else()
    # The unit names /usr paths; point it at what this prefix installs.
    set(_unit_dir "${_prefix}/lib/systemd/system")
    file(READ "${_unit_src}" _unit)
    string(REPLACE "/usr/bin/pooler" "${_prefix}/${POOLER_INSTALL_BINDIR}/pooler" _unit "${_unit}")
    string(REPLACE "/etc/pooler/pooler.toml" "${_config}" _unit "${_unit}")
    string(REPLACE "/usr/share/doc/pooler" "${_prefix}/${POOLER_INSTALL_DOCDIR}" _unit "${_unit}")
    set(_unit_src "${POOLER_INSTALL_WORKDIR}/pooler.service")
    file(WRITE "${_unit_src}" "${_unit}")
  endif()
  file(INSTALL DESTINATION "${_unit_dir}" TYPE FILE
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ FILES "${_unit_src}")
endif()
