// streamattn/streamattn.hpp — everything in one include.
#pragma once

#include "streamattn/ams_sketch.hpp"
#include "streamattn/build_info.hpp"
#include "streamattn/common.hpp"
#include "streamattn/count_sketch.hpp"
#include "streamattn/dense_sketch.hpp"
#include "streamattn/gaussian_sketch.hpp"
#include "streamattn/isa.hpp"
#include "streamattn/kwise_hash.hpp"
#include "streamattn/seeding.hpp"
#include "streamattn/serialize.hpp"
#include "streamattn/sparse_recovery.hpp"
#include "streamattn/sparse_vector.hpp"
#include "streamattn/validate.hpp"
