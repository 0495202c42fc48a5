# Install rules beyond the binary (daemon/CMakeLists.txt installs that to bin/): the systemd unit, the config
# in /etc and the documentation. Included from the top-level CMakeLists.txt after include(GNUInstallDirs).
#
# Where things go depends on the prefix *at install time* (cpack installs under /usr, a by-hand
# `cmake --install` usually under /usr/local), so the unit and the config are placed by a script that runs
# then (cmake/pooler_install_files.cmake) rather than by paths fixed when configuring:
#
#   prefix      binary            config                        unit
#   /usr        /usr/bin/pooler   /etc/pooler/pooler.toml       /lib/systemd/system/pooler.service
#   /usr/local  /usr/local/bin/…  /usr/local/etc/pooler/…       /usr/local/lib/systemd/system/pooler.service
#   /opt/pooler /opt/pooler/bin/… /etc/opt/pooler/pooler/…      /opt/pooler/lib/systemd/system/pooler.service
#
# The unit is always installed: systemd reads /lib/systemd/system and /usr/local/lib/systemd/system itself,
# and under any other prefix the file is inert until linked with `systemctl link`. Under a prefix other than
# /usr its ExecStart/ExecStartPre/ExecReload and config paths are rewritten to the ones installed with it, so
# it never starts a different binary than the one beside it. /lib/systemd/system is where Debian 12 packages
# ship units (systemd.pc's systemdsystemunitdir); -DPOOLER_SYSTEMD_UNIT_DIR=/usr/lib/systemd/system for
# distributions that want /usr/lib.

option(POOLER_INSTALL_SYSTEMD_UNIT "Install deploy/pooler.service" ON)
set(POOLER_SYSTEMD_UNIT_DIR "/lib/systemd/system" CACHE STRING
    "Directory for the systemd unit when installing under the /usr prefix")

# The example config (every key documented) and the README, as documentation.
install(FILES ${PROJECT_SOURCE_DIR}/pooler.toml.example ${PROJECT_SOURCE_DIR}/README.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES ${PROJECT_SOURCE_DIR}/deploy/README.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR} RENAME README.deploy.md)

# Values the install-time script needs, then the script itself.
install(CODE "
set(POOLER_DEPLOY_DIR \"${PROJECT_SOURCE_DIR}/deploy\")
set(POOLER_INSTALL_SYSTEMD_UNIT ${POOLER_INSTALL_SYSTEMD_UNIT})
set(POOLER_SYSTEMD_UNIT_DIR \"${POOLER_SYSTEMD_UNIT_DIR}\")
set(POOLER_INSTALL_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
set(POOLER_INSTALL_DOCDIR \"${CMAKE_INSTALL_DOCDIR}\")
set(POOLER_INSTALL_WORKDIR \"${CMAKE_BINARY_DIR}/pooler-install\")
")
install(SCRIPT ${PROJECT_SOURCE_DIR}/cmake/pooler_install_files.cmake)
