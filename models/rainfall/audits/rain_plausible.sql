-- audit: rain_plausible
-- model: silver.rainfall
-- description: Over 1,000 mm in one day is a unit error for these temperate stations (the world
--   record, 1,825 mm in 24 h, fell during a tropical cyclone).
SELECT station_id, date, rain_mm
FROM @this
WHERE rain_mm > 1000
