# The install layout (memosd(8), FILES) and the .deb package.
#
#   bin/memosd, bin/memctl
#   lib/memosd/memos-plugin-host            (found beside memosd, then here)
#   lib/memosd/plugins/NAME/                 (each plugin and its manifest: memos_add_plugin())
#   include/memos/, lib/libmemos_client.a, lib/cmake/memos/, lib/pkgconfig/
#   share/man/man{1,5,7,8}/
#   lib/systemd/system/memosd.{service,socket}
#   /etc/memosd/memosd.conf                  (sample)

install(TARGETS memosd memctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS memos-plugin-host RUNTIME DESTINATION ${CMAKE_INSTALL_LIBDIR}/memosd)
# Plugins install themselves: memos_add_plugin() (cmake/plugins.cmake).

# The SDK: the client library with the protocol code it needs, its headers,
# a CMake package and a pkg-config file.
install(TARGETS memos_client memos_ipc EXPORT memosTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_SOURCE_DIR}/sdk/include/memos/client.h
              ${PROJECT_SOURCE_DIR}/sdk/include/memos/types.h
              ${PROJECT_SOURCE_DIR}/ipc/include/memos/vocabulary.h
              ${PROJECT_SOURCE_DIR}/plugins/include/memos/plugin.h
              ${PROJECT_SOURCE_DIR}/plugins/include/memos/plugin_sdk.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/memos)
install(FILES ${PROJECT_SOURCE_DIR}/ipc/schema/plugin.capnp ${PROJECT_SOURCE_DIR}/ipc/schema/memos.capnp
        DESTINATION ${CMAKE_INSTALL_DATADIR}/memos/schema)
install(EXPORT memosTargets NAMESPACE memos:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/memos)
file(WRITE ${PROJECT_BINARY_DIR}/memosConfig.cmake
     "include(CMakeFindDependencyMacro)\nfind_dependency(CapnProto)\nfind_dependency(Threads)\n"
     "include(\"\${CMAKE_CURRENT_LIST_DIR}/memosTargets.cmake\")\n")
include(CMakePackageConfigHelpers)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/memosConfigVersion.cmake
                                 COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/memosConfig.cmake ${PROJECT_BINARY_DIR}/memosConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/memos)
file(WRITE ${PROJECT_BINARY_DIR}/memos-client.pc
     "prefix=${CMAKE_INSTALL_PREFIX}\nlibdir=\${prefix}/${CMAKE_INSTALL_LIBDIR}\n"
     "includedir=\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}\n\n"
     "Name: memos-client\nDescription: C++ client of memosd\nVersion: ${PROJECT_VERSION}\n"
     "Requires.private: capnp\nLibs: -L\${libdir} -lmemos_client -lmemos_ipc -lcapnp -lkj -pthread\n"
     "Cflags: -I\${includedir}\n")
install(FILES ${PROJECT_BINARY_DIR}/memos-client.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# Every page in man/ (the mandoc_lint_* tests lint the same list).
file(GLOB _man_pages CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/man/*.[1-8])
foreach(path ${_man_pages})
  string(REGEX REPLACE ".*\\.([0-9])$" "\\1" section ${path})
  install(FILES ${path} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()

install(FILES ${PROJECT_SOURCE_DIR}/dist/memosd.service ${PROJECT_SOURCE_DIR}/dist/memosd.socket
        DESTINATION lib/systemd/system)
# Always /etc, where the units and the man pages look, whatever the prefix.
install(FILES ${PROJECT_SOURCE_DIR}/dist/memosd.conf DESTINATION /etc/memosd)

# cpack -G DEB: a package that installs and removes cleanly; postinst makes
# the memosd user and memos group the units run as.
set(CPACK_PACKAGE_NAME memosd)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "memosd developers <memosd@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "memory daemon for LLM agents")
set(CPACK_GENERATOR DEB)
set(CPACK_SET_DESTDIR ON)  # /etc/memosd is absolute...
set(CPACK_INSTALL_PREFIX /usr)  # ...so the prefix is set this way
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION misc)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/dist/debian/postinst
                                       ${PROJECT_SOURCE_DIR}/dist/debian/postrm
                                       ${PROJECT_SOURCE_DIR}/dist/debian/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
