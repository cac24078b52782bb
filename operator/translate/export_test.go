package translate

// ReusedRoutes is reusedRoutes, for the tests of reuse.
var ReusedRoutes = reusedRoutes
