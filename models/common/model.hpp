#pragma once

// What a model file includes and defines. The shared main (model_main.cpp) calls
// acceptbench::server_main with these two.

#include "connection.hpp"
#include "event_loop.hpp"
#include "socket.hpp"
#include "server.hpp"

namespace acceptbench {

extern const ModelSpec kModel;

// Sets up the listener(s), calls server.announce_ready(port), serves until
// server.stopping(), finishes in-flight work within the grace period, returns.
void run_model(Server& server);

}  // namespace acceptbench
