# The install layout (memosd(8), FILES) and the .deb package.
#
#   bin/memosd, bin/memctl
#   lib/memosd/memos-plugin-host            (found beside memosd, then here)
#   lib/memosd/plugins/NAME/                 (each plugin and its manifest: memos_add_plugin())
#   include/memos/, lib/libmemos_client.a, lib/libmemos.so.1 (the C API),
#   lib/python3/dist-packages/memos/ (the Python client),
#   bin/memos-mcp, lib/python3/dist-packages/memos_mcp/ (the MCP server),
#   lib/cmake/memos/, lib/pkgconfig/{memos-client,memos}.pc
#   share/man/man{1,5,7,8}/
#   lib/systemd/system/memosd.{service,socket}  (ExecStart= names this prefix's memosd)
#   etc/memosd/memosd.conf                   (sample; /etc/memosd/ when the prefix is /usr)
#   share/bash-completion/completions/memctl, share/zsh/vendor-completions/_memctl
#
# Everything lands under the prefix given at install time (`cmake --install
# build --prefix DIR` works as any user), except the configuration of a /usr
# install (the .deb), which goes to /etc as the FHS wants. Decided when
# installing, not when configuring: the prefix may change in between. lib/
# above is CMAKE_INSTALL_LIBDIR (lib/x86_64-linux-gnu/ when configured for the
# prefix /usr): memosd finds its plugins and host there from its own path
# (kernel/install_layout.h).

install(TARGETS memosd memctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS memos-plugin-host RUNTIME DESTINATION ${CMAKE_INSTALL_LIBDIR}/memosd)
# Plugins install themselves: memos_add_plugin() (cmake/plugins.cmake).

# The SDK: the client library with the protocol code it needs, its headers,
# a CMake package and a pkg-config file.
install(TARGETS memos_client memos_ipc memos EXPORT memosTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} NAMELINK_COMPONENT Unspecified
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_SOURCE_DIR}/sdk/include/memos/client.h
              ${PROJECT_SOURCE_DIR}/sdk/include/memos/memos.h
              ${PROJECT_SOURCE_DIR}/sdk/include/memos/memos_results.h
              ${PROJECT_SOURCE_DIR}/sdk/include/memos/memos_daemon.h
              ${PROJECT_SOURCE_DIR}/sdk/include/memos/types.h
              ${PROJECT_SOURCE_DIR}/sdk/include/memos/routing.h
              ${PROJECT_SOURCE_DIR}/sdk/include/memos/scheduling.h
              ${PROJECT_SOURCE_DIR}/sdk/include/memos/cluster.h
              ${PROJECT_SOURCE_DIR}/ipc/include/memos/vocabulary.h
              ${PROJECT_SOURCE_DIR}/plugins/include/memos/plugin.h
              ${PROJECT_SOURCE_DIR}/plugins/include/memos/plugin_sdk.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/memos)
install(FILES ${PROJECT_SOURCE_DIR}/ipc/schema/plugin.capnp ${PROJECT_SOURCE_DIR}/ipc/schema/memos.capnp
        DESTINATION ${CMAKE_INSTALL_DATADIR}/memos/schema)
install(EXPORT memosTargets NAMESPACE memos:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/memos)
# Cap'n Proto's CMake config (Debian's) runs check_library_exists(), which
# needs C: a project declared LANGUAGES CXX gets it enabled here.
file(WRITE ${PROJECT_BINARY_DIR}/memosConfig.cmake [=[
include(CMakeFindDependencyMacro)
get_property(_memos_languages GLOBAL PROPERTY ENABLED_LANGUAGES)
if(NOT "C" IN_LIST _memos_languages)
  enable_language(C)
endif()
unset(_memos_languages)
find_dependency(CapnProto)
find_dependency(Threads)
include("${CMAKE_CURRENT_LIST_DIR}/memosTargets.cmake")
]=])
include(CMakePackageConfigHelpers)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/memosConfigVersion.cmake
                                 COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/memosConfig.cmake ${PROJECT_BINARY_DIR}/memosConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/memos)
# Relocatable: the prefix is found from where the .pc file lies (LIBDIR/pkgconfig),
# so the tree works wherever it is installed or moved. An absolute LIBDIR or
# INCLUDEDIR is written as it is.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(_pc_prefix "${CMAKE_INSTALL_PREFIX}")
  set(_pc_libdir "${CMAKE_INSTALL_LIBDIR}")
else()
  string(REGEX REPLACE "[^/]+" ".." _pc_up "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
  set(_pc_prefix "\${pcfiledir}/${_pc_up}")
  set(_pc_libdir "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
set(_pc_includedir "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(_pc_includedir "${CMAKE_INSTALL_INCLUDEDIR}")
endif()
file(WRITE ${PROJECT_BINARY_DIR}/memos-client.pc
     "prefix=${_pc_prefix}\nlibdir=${_pc_libdir}\nincludedir=${_pc_includedir}\n\n"
     "Name: memos-client\nDescription: C++ client of memosd\nVersion: ${PROJECT_VERSION}\n"
     "Requires.private: capnp\nLibs: -L\${libdir} -lmemos_client -lmemos_ipc -lcapnp -lkj -pthread\n"
     "Cflags: -I\${includedir}\n")
# The C API: libmemos.so alone (its C++ and Cap'n Proto are inside or
# linked by it, private).
file(WRITE ${PROJECT_BINARY_DIR}/memos.pc
     "prefix=${_pc_prefix}\nlibdir=${_pc_libdir}\nincludedir=${_pc_includedir}\n\n"
     "Name: memos\nDescription: C client of memosd (memos.h(3))\nVersion: 1.3.0\n"
     "Libs: -L\${libdir} -lmemos\nCflags: -I\${includedir}\n")
install(FILES ${PROJECT_BINARY_DIR}/memos-client.pc ${PROJECT_BINARY_DIR}/memos.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The Python client, pure Python over libmemos.so.1: where Debian's python3
# looks (lib/python3/dist-packages; a prefix install is found with
# PYTHONPATH=PREFIX/lib/python3/dist-packages, and the package finds the
# prefix's libmemos.so.1 from its own place).
install(DIRECTORY ${PROJECT_SOURCE_DIR}/sdk/python/memos DESTINATION lib/python3/dist-packages
        FILES_MATCHING PATTERN "*.py" PATTERN "__pycache__" EXCLUDE)
# memos-mcp, the MCP server (bridges/mcp): the script in bin/, its package
# beside the Python client's; from a prefix outside Python's path the script
# finds both in PREFIX/lib/python3/dist-packages by itself.
install(PROGRAMS ${PROJECT_SOURCE_DIR}/bridges/mcp/memos-mcp DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/bridges/mcp/memos_mcp DESTINATION lib/python3/dist-packages
        FILES_MATCHING PATTERN "*.py" PATTERN "__pycache__" EXCLUDE)

# Every page in man/ (the mandoc_lint_* tests lint the same list).
file(GLOB _man_pages CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/man/*.[1-8])
foreach(path ${_man_pages})
  string(REGEX REPLACE ".*\\.([0-9])$" "\\1" section ${path})
  install(FILES ${path} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()

# Sample tenant policies, memos-policy(5): to copy into the policy folder
# (an active one would change who is served the moment it is installed).
install(DIRECTORY ${PROJECT_SOURCE_DIR}/dist/tenants.d
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/memosd)

# Shell completion of memctl, where bash-completion and Debian's zsh look
# (shell/completion/; installed once they are there).
if(EXISTS ${PROJECT_SOURCE_DIR}/shell/completion/memctl.bash)
  install(FILES ${PROJECT_SOURCE_DIR}/shell/completion/memctl.bash
          DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME memctl)
endif()
if(EXISTS ${PROJECT_SOURCE_DIR}/shell/completion/_memctl)
  install(FILES ${PROJECT_SOURCE_DIR}/shell/completion/_memctl
          DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)
endif()

# The configuration and the units, at install time (the prefix is known only
# then): memosd.conf in PREFIX/etc/memosd/, or /etc/memosd/ for the prefix
# /usr (the .deb); the units in PREFIX/lib/systemd/system/ (systemd reads
# /usr/lib/ and /usr/local/lib/; elsewhere they are for copying), their
# ExecStart= naming this prefix's memosd and configuration. For /usr the units
# are dist/'s as they are. (file(INSTALL) adds DESTDIR and records the files
# in install_manifest.txt.)
install(CODE "set(_memos_source \"${PROJECT_SOURCE_DIR}\")
set(_memos_staging \"${PROJECT_BINARY_DIR}/install-units\")
set(_memos_bindir \"${CMAKE_INSTALL_BINDIR}\")
set(_memos_sysconfdir \"${CMAKE_INSTALL_SYSCONFDIR}\")
include(\"${PROJECT_SOURCE_DIR}/cmake/install_config.cmake\")")

# cpack -G DEB: a package that installs and removes cleanly; postinst makes
# the memosd user and memos group the units run as.
set(CPACK_PACKAGE_NAME memosd)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "memosd developers <memosd@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "memory daemon for LLM agents")
set(CPACK_GENERATOR DEB)
# The package installs with the prefix /usr (so memosd.conf goes to
# /etc/memosd/, dist/debian/conffiles) into a DESTDIR: CPack's own staging
# prefix would not be /usr, and /etc would end up under /usr.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION misc)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# libmemos.so.1: a shlibs file; dist/debian/triggers runs ldconfig, so the
# dynamic linker's cache (which Python's memos package asks) lists it.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
# The Python client and memos-mcp run on Debian's python3.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS python3)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/dist/debian/postinst
                                       ${PROJECT_SOURCE_DIR}/dist/debian/postrm
                                       ${PROJECT_SOURCE_DIR}/dist/debian/conffiles
                                       ${PROJECT_SOURCE_DIR}/dist/debian/triggers)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
