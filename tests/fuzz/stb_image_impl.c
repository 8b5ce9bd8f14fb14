/* stb_image's implementation for the image fuzz target in instrumented builds (-DPSAQ_FUZZ or
 * -DPSAQ_SANITIZE): the same header Debian's libstb.so is built from, with no option macros
 * (as Debian builds it, README.Debian), compiled here so that the fuzzer's coverage and the
 * sanitizers see inside the decoder. The executable's definitions take precedence over libstb.so's
 * for psaq's calls (model/data/image_folder.cc). */
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
