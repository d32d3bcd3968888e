# ulpd as a service: started by socket activation (systemd-socket-activate)
# with the capabilities and no_new_privs of ulpd.service, READY=1 and
# STATUS= through sd_notify, journal entries with ULP_* fields, the socket
# left in place for the next start.
ulp_integration_test(socket_activation)
