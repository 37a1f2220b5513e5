# Include directories: which headers a target may include.
#
# Headers are included by their path from the source root ("memcube/store.h",
# "plugins/loader/manifest.h"), but no target exports the source root itself:
# that would let any part include any other, against the one-way dependencies
# of DESIGN.md (tests/conventions/check_includes.sh checks the sources too).
# Each library exports instead a folder of its own under build/include/ that
# holds one symbolic link, PART -> the source folder PART, so a target sees
# the parts it links and nothing else.

# memos_export_folder(TARGET PUBLIC|PRIVATE|INTERFACE PART)
# PART is a folder of the source tree ("memcube", "plugins/loader").
function(memos_export_folder target scope part)
  if(NOT IS_DIRECTORY ${PROJECT_SOURCE_DIR}/${part})
    message(FATAL_ERROR "memos_export_folder: no folder ${part} in the source tree")
  endif()
  string(REPLACE "/" "+" slot "${part}")
  set(root ${PROJECT_BINARY_DIR}/include/${slot})
  get_filename_component(parent ${root}/${part} DIRECTORY)
  file(MAKE_DIRECTORY ${parent})
  file(CREATE_LINK ${PROJECT_SOURCE_DIR}/${part} ${root}/${part} SYMBOLIC)
  target_include_directories(${target} ${scope} $<BUILD_INTERFACE:${root}>)
endfunction()

# memos_capnp(TARGET SCHEMA...)
# Compiles Cap'n Proto schemas into TARGET. Their headers are included by path
# from the source root too ("ipc/schema/memos.capnp.h"); they are generated
# into a folder of TARGET's own, which it exports, rather than into the build
# root, which would hand every schema to every target.
function(memos_capnp target)
  set(CAPNPC_SRC_PREFIX ${PROJECT_SOURCE_DIR})
  set(CAPNPC_OUTPUT_DIR ${PROJECT_BINARY_DIR}/generated/${target})
  foreach(schema ${ARGN})
    # capnp writes into existing folders only.
    file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR}/${schema})
    get_filename_component(rel_dir ${rel} DIRECTORY)
    file(MAKE_DIRECTORY ${CAPNPC_OUTPUT_DIR}/${rel_dir})
  endforeach()
  capnp_generate_cpp(srcs hdrs ${ARGN})
  target_sources(${target} PRIVATE ${srcs} ${hdrs})
  target_include_directories(${target} PUBLIC $<BUILD_INTERFACE:${CAPNPC_OUTPUT_DIR}>)
endfunction()
