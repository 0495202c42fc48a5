// Placeholder; the relay's streaming message scanner lands here (owned by the daemon author).
#pragma once
