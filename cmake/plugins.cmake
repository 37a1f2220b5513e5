# memos_add_plugin(NAME SOURCES src... LIBRARIES lib... [MANIFEST file])
#
# One plugin (memos-plugin(7)): the shared object memos-NAME.so and its
# manifest NAME.plugin.toml (default: in the calling folder), side by side
#   - in the build tree, build/plugins/NAME/, where memosd run from the build
#     tree looks, and
#   - installed (and so in the .deb), lib/memosd/plugins/NAME/, where an
#     installed memosd looks.
# Every plugin exports memos_plugin_describe_v1 and none of its own code
# besides (only the toolchain's GNU-unique template symbols stay): hidden
# visibility, and the static libraries it links (FAISS, llama.cpp...) kept
# out of its dynamic symbol table, so no two plugins, nor the daemon,
# interpose on each other's copies.
#
# The manifest is checked here, at configure time: its name must be NAME and
# its library the file built, so a manifest cannot point at nothing once
# installed. memosd builds with every plugin (MEMOS_PLUGINS, a global list).
function(memos_add_plugin name)
  cmake_parse_arguments(P "" "MANIFEST" "SOURCES;LIBRARIES" ${ARGN})
  if(NOT P_SOURCES)
    message(FATAL_ERROR "memos_add_plugin(${name}): no SOURCES")
  endif()
  if(NOT P_MANIFEST)
    set(P_MANIFEST ${CMAKE_CURRENT_SOURCE_DIR}/${name}.plugin.toml)
  endif()
  set(target memos-${name})
  set(library ${target}.so)

  file(STRINGS ${P_MANIFEST} manifest_name REGEX "^name[ \t]*=")
  file(STRINGS ${P_MANIFEST} manifest_library REGEX "^library[ \t]*=")
  if(NOT manifest_name MATCHES "\"${name}\"")
    message(FATAL_ERROR "${P_MANIFEST}: name must be \"${name}\" (found: ${manifest_name})")
  endif()
  if(NOT manifest_library MATCHES "\"${library}\"")
    message(FATAL_ERROR "${P_MANIFEST}: library must be \"${library}\" (found: ${manifest_library})")
  endif()

  add_library(${target} MODULE ${P_SOURCES})
  set_target_properties(${target} PROPERTIES PREFIX "" SUFFIX ".so"
                        CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON
                        LIBRARY_OUTPUT_DIRECTORY ${MEMOS_PLUGIN_OUTPUT_DIR}/${name})
  target_link_libraries(${target} PRIVATE ${P_LIBRARIES} memos_plugin_api memos_warnings)
  target_link_options(${target} PRIVATE "LINKER:--exclude-libs,ALL")
  configure_file(${P_MANIFEST} ${MEMOS_PLUGIN_OUTPUT_DIR}/${name}/${name}.plugin.toml COPYONLY)

  install(TARGETS ${target} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/memosd/plugins/${name})
  install(FILES ${P_MANIFEST} DESTINATION ${CMAKE_INSTALL_LIBDIR}/memosd/plugins/${name}
          RENAME ${name}.plugin.toml)
  set_property(GLOBAL APPEND PROPERTY MEMOS_PLUGINS ${target})
endfunction()
