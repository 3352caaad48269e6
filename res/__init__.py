"Resources shipped with tspace (DBC, torque map, drive cycles, default config), installed as the package `tspace.res`."
