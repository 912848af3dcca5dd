# How streamattn finds what it depends on. Nothing is vendored and nothing is downloaded:
# Eigen comes from the system (Debian: libeigen3-dev) or from the cmeel-eigen PyPI package,
# pybind11 from PyPI, Google Benchmark and Catch2 from the system (Debian: libbenchmark-dev, catch2).
#
# cmeel-eigen installs Eigen3Config.cmake under <site-packages>/cmeel.prefix, which CMake does not
# search on its own; `python -m cmeel cmake` prints that prefix. The interpreter asked is, in order:
# Python_EXECUTABLE if given, the active virtual environment's ($VIRTUAL_ENV, then $CONDA_PREFIX),
# then python3 / python on PATH. The search is not cached, so a configure that failed (Eigen not yet
# installed, or a different python first on PATH) finds it on the next run.

# Every Python interpreter worth asking, most specific first.
function(_streamattn_python_candidates out)
  set(_c "")
  foreach(_v Python_EXECUTABLE Python3_EXECUTABLE PYTHON_EXECUTABLE)
    if(${_v})
      list(APPEND _c "${${_v}}")
    endif()
  endforeach()
  foreach(_env VIRTUAL_ENV CONDA_PREFIX)
    if(DEFINED ENV{${_env}})
      foreach(_name python3 python)
        if(EXISTS "$ENV{${_env}}/bin/${_name}")
          list(APPEND _c "$ENV{${_env}}/bin/${_name}")
        endif()
      endforeach()
    endif()
  endforeach()
  foreach(_name python3 python)
    unset(_streamattn_found CACHE)
    find_program(_streamattn_found NAMES ${_name})
    if(_streamattn_found)
      list(APPEND _c "${_streamattn_found}")
    endif()
    unset(_streamattn_found CACHE)
  endforeach()
  list(REMOVE_DUPLICATES _c)
  set(${out} "${_c}" PARENT_SCOPE)
endfunction()

# The cmeel prefixes of the first interpreter that has cmeel-eigen.
function(_streamattn_cmeel_prefix out)
  set(${out} "" PARENT_SCOPE)
  _streamattn_python_candidates(_candidates)
  foreach(_py IN LISTS _candidates)
    execute_process(COMMAND "${_py}" -m cmeel cmake OUTPUT_VARIABLE _prefix OUTPUT_STRIP_TRAILING_WHITESPACE
                    ERROR_QUIET RESULT_VARIABLE _rc)
    if(_rc EQUAL 0 AND _prefix)
      string(REPLACE ":" ";" _prefix "${_prefix}")
      set(${out} "${_prefix}" PARENT_SCOPE)
      set(_streamattn_cmeel_python "${_py}" PARENT_SCOPE)
      return()
    endif()
  endforeach()
endfunction()

# Eigen3::Eigen, 3.4 or newer. `hint` (optional) is an Eigen3_DIR to try first (the one an
# installed streamattn was built with).
macro(streamattn_find_eigen)
  if(NOT TARGET Eigen3::Eigen)
    set(_streamattn_eigen_hint "${ARGN}")
    if(_streamattn_eigen_hint AND EXISTS "${_streamattn_eigen_hint}")
      find_package(Eigen3 3.4 CONFIG QUIET PATHS "${_streamattn_eigen_hint}" NO_DEFAULT_PATH)
    endif()
    if(NOT Eigen3_FOUND)
      find_package(Eigen3 3.4 CONFIG QUIET)
    endif()
    if(NOT Eigen3_FOUND)
      _streamattn_cmeel_prefix(_streamattn_cmeel)
      if(_streamattn_cmeel)
        find_package(Eigen3 3.4 CONFIG QUIET PATHS ${_streamattn_cmeel} NO_DEFAULT_PATH)
      endif()
    endif()
    if(NOT Eigen3_FOUND)
      _streamattn_python_candidates(_streamattn_asked)
      string(REPLACE ";" ", " _streamattn_asked "${_streamattn_asked}")
      message(FATAL_ERROR
        "streamattn needs Eigen 3.4 and did not find it. Either\n"
        "  * pip install cmeel-eigen   (into the active virtual environment; CMake asks `python -m cmeel cmake`\n"
        "    of: ${_streamattn_asked}), or\n"
        "  * apt-get install libeigen3-dev   (or your system's Eigen 3.4 package),\n"
        "then run cmake again; or point CMake at an Eigen install with -DEigen3_DIR=<dir with Eigen3Config.cmake>.")
    endif()
    message(STATUS "streamattn: Eigen ${Eigen3_VERSION} from ${Eigen3_DIR}")
  endif()
endmacro()

macro(streamattn_find_pybind11)
  if(NOT TARGET pybind11::module)
    find_package(Python 3.9 COMPONENTS Interpreter Development.Module REQUIRED)
    if(NOT pybind11_DIR)
      execute_process(COMMAND "${Python_EXECUTABLE}" -m pybind11 --cmakedir
                      OUTPUT_VARIABLE pybind11_DIR OUTPUT_STRIP_TRAILING_WHITESPACE)
    endif()
    find_package(pybind11 CONFIG REQUIRED)
  endif()
endmacro()

macro(streamattn_find_benchmark)
  find_package(benchmark REQUIRED)
endmacro()

macro(streamattn_find_catch2)
  find_package(Catch2 2 QUIET)
endmacro()

# pip builds in a fresh, temporary environment every time, so Eigen's and pybind11's headers sit
# under a new path on every `pip install .`: every object file would be rebuilt although nothing
# changed. For the Python build (scikit-build-core keeps its build directory, build/<wheel tag>),
# the headers are copied into the build tree, rewriting only files whose content changed, and the
# imported targets point there: a second `pip install .` finds every object file up to date.
function(streamattn_stable_includes target dest)
  if(NOT TARGET ${target} OR CMAKE_VERSION VERSION_LESS 3.21)
    return()
  endif()
  get_target_property(_dirs ${target} INTERFACE_INCLUDE_DIRECTORIES)
  if(NOT _dirs)
    return()
  endif()
  set(_new "")
  set(_i 0)
  foreach(_d IN LISTS _dirs)
    if(NOT IS_DIRECTORY "${_d}")
      list(APPEND _new "${_d}")
      continue()
    endif()
    set(_to "${dest}/${_i}")
    file(GLOB_RECURSE _files LIST_DIRECTORIES false RELATIVE "${_d}" "${_d}/*")
    foreach(_f IN LISTS _files)
      get_filename_component(_sub "${_to}/${_f}" DIRECTORY)
      file(MAKE_DIRECTORY "${_sub}")
      file(COPY_FILE "${_d}/${_f}" "${_to}/${_f}" ONLY_IF_DIFFERENT)
    endforeach()
    list(APPEND _new "${_to}")
    math(EXPR _i "${_i} + 1")
  endforeach()
  set_property(TARGET ${target} PROPERTY INTERFACE_INCLUDE_DIRECTORIES "${_new}")
endfunction()
