# Run by `cmake --install` (and cpack), not at configure time: installs
# memosd.conf and the systemd units for the prefix given now
# (CMAKE_INSTALL_PREFIX here is the install-time one). install.cmake sets
#   _memos_source      the source tree
#   _memos_staging     a build folder for the units written for this prefix
#   _memos_bindir      CMAKE_INSTALL_BINDIR
#   _memos_sysconfdir  CMAKE_INSTALL_SYSCONFDIR
#
# The configuration folder follows GNUInstallDirs' rule for
# CMAKE_INSTALL_FULL_SYSCONFDIR, applied to this prefix: PREFIX/etc, except
# /etc for the prefix /usr (the .deb; dist/debian/conffiles names
# /etc/memosd/memosd.conf). An absolute sysconfdir is used as it is.
# memosd(8), FILES, and kernel/install_layout.h apply the same rule.

string(REGEX REPLACE "/+$" "" _memos_prefix "${CMAKE_INSTALL_PREFIX}")
if(IS_ABSOLUTE "${_memos_sysconfdir}")
  set(_memos_etc "${_memos_sysconfdir}")
elseif(_memos_prefix STREQUAL "/usr")
  set(_memos_etc "/${_memos_sysconfdir}")
else()
  set(_memos_etc "${_memos_prefix}/${_memos_sysconfdir}")
endif()
if(IS_ABSOLUTE "${_memos_bindir}")
  set(_memos_bin "${_memos_bindir}")
else()
  set(_memos_bin "${_memos_prefix}/${_memos_bindir}")
endif()

# A configuration already there is the user's: an install again (after each
# build) keeps it, as dpkg keeps a conffile.
if(EXISTS "$ENV{DESTDIR}${_memos_etc}/memosd/memosd.conf")
  message(STATUS "Keeping: $ENV{DESTDIR}${_memos_etc}/memosd/memosd.conf")
else()
  file(INSTALL DESTINATION "${_memos_etc}/memosd" TYPE FILE FILES "${_memos_source}/dist/memosd.conf")
endif()

# dist/'s units name /usr/bin/memosd and /etc/memosd/memosd.conf: the units
# installed name this prefix's instead (unchanged for /usr).
# (A folder per destination: cpack and an install into another prefix may
# run at once from the same build tree, as the tests do.)
string(MD5 _memos_slot "$ENV{DESTDIR}${_memos_prefix}")
set(_memos_staging "${_memos_staging}/${_memos_slot}")
file(MAKE_DIRECTORY "${_memos_staging}")
file(READ "${_memos_source}/dist/memosd.service" _memos_unit)
string(REPLACE "/usr/bin/memosd " "${_memos_bin}/memosd " _memos_unit "${_memos_unit}")
string(REPLACE "/etc/memosd/memosd.conf" "${_memos_etc}/memosd/memosd.conf" _memos_unit "${_memos_unit}")
file(WRITE "${_memos_staging}/memosd.service" "${_memos_unit}")
file(INSTALL DESTINATION "${_memos_prefix}/lib/systemd/system" TYPE FILE
     FILES "${_memos_staging}/memosd.service" "${_memos_source}/dist/memosd.socket")
