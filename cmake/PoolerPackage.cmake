# CPack: `cpack -G DEB` in a build tree makes pooler_<version>_<arch>.deb from the install rules.
# The package installs under /usr, makes /etc/pooler/pooler.toml a conffile, creates the system user
# "pooler" in its postinst and enables or starts nothing (deploy/debian/ holds the maintainer scripts).

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "pooler")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_VENDOR "pooler")
set(CPACK_PACKAGE_CONTACT "pooler maintainers <pooler@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "PostgreSQL connection pooler")
set(CPACK_PACKAGE_DESCRIPTION
    "A small daemon that speaks the PostgreSQL wire protocol to applications and shares a bounded pool of\n"
    "server connections between them, with SQLAlchemy QueuePool semantics in session or transaction mode.")
string(REPLACE ";" "" CPACK_PACKAGE_DESCRIPTION "${CPACK_PACKAGE_DESCRIPTION}")
set(CPACK_STRIP_FILES ON)

# Install with DESTDIR and the real prefix, so the install-time script sees /usr and puts the config in
# /etc and the unit in /lib/systemd/system (without this cpack installs into <staging>/usr as the prefix).
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_INSTALL_PREFIX "/usr")
set(CPACK_SET_DESTDIR ON)
# /etc and /lib are meant; don't warn about them.
set(CPACK_WARN_ON_ABSOLUTE_INSTALL_DESTINATION OFF)

set(CPACK_DEBIAN_FILE_NAME "DEB-DEFAULT")
set(CPACK_DEBIAN_PACKAGE_RELEASE "1")
set(CPACK_DEBIAN_PACKAGE_SECTION "database")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
# Library dependencies from dpkg-shlibdeps (dpkg-dev); adduser for the postinst.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "postgresql-client")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${PROJECT_SOURCE_DIR}/deploy/debian/conffiles"
    "${PROJECT_SOURCE_DIR}/deploy/debian/postinst"
    "${PROJECT_SOURCE_DIR}/deploy/debian/prerm"
    "${PROJECT_SOURCE_DIR}/deploy/debian/postrm")
# Maintainer scripts 0755, conffiles 0644, whatever the checkout's modes.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)

include(CPack)
