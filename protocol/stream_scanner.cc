#include "protocol/stream_scanner.h"
