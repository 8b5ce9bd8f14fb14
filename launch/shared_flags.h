// Flags that several subcommands take, defined once (gflags allows one definition per name).
// A subcommand takes one by naming it in its table line (launch/subcommands.cc); the others
// refuse it. Move a flag here from a cmd_*.cc when a second subcommand needs it.
#pragma once

#include <gflags/gflags.h>

DECLARE_string(model);         // preset name, float weights file, or quantized export
DECLARE_string(dataset);       // fashion_mnist or an ImageFolder root
DECLARE_string(dataset_dir);   // where the Fashion-MNIST files are
DECLARE_string(split);         // Fashion-MNIST split: test | train (make-scenes: train | val)
DECLARE_int32(batch_size);     // images per forward pass on each rank
DECLARE_string(on_bad_image);  // fail | skip
DECLARE_uint64(seed);           // the job seed
DECLARE_string(eval_dataset);  // labelled images for the final top-1
DECLARE_string(device);        // cpu | cuda | auto
